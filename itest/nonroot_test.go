package itest

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMountAsNormalUser: a user without privileges mounts through
// fusermount3 (Debian's fuse3), reads the mount, and unmounts on SIGINT.
// Run as root, the test drops to nobody with setpriv; run as a normal user,
// every other mount test already is this case.
func TestMountAsNormalUser(t *testing.T) {
	needBinary(t)
	needVega(t)
	if os.Getuid() != 0 {
		t.Skip("not root: every mount test here already mounts as a normal user")
	}
	for _, tool := range []string{"setpriv", "fusermount3"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "%s not found: %v", tool, err)
		}
	}
	const uid, gid = 65534, 65534 // nobody, nogroup
	// A normal system's udev rule makes /dev/fuse 0666, which fusermount3
	// needs; a container may leave it 0600. Open it up for this test only.
	if st, err := os.Stat("/dev/fuse"); err == nil && st.Mode().Perm()&0o006 != 0o006 {
		if err := os.Chmod("/dev/fuse", 0o666); err != nil {
			unavailable(t, "/dev/fuse is %v and cannot be opened up: %v", st.Mode().Perm(), err)
		}
		t.Cleanup(func() { os.Chmod("/dev/fuse", st.Mode().Perm()) })
	}
	// t.TempDir's parent is private to root; nobody must reach this one
	base, err := os.MkdirTemp("", "intakefs-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if base, err = filepath.EvalSymlinks(base); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	// the test binary's own directory is private to root: copy the daemon
	bin := filepath.Join(base, "intakefs")
	copyFile(t, binPath, bin, 0o755)
	// nor need the checkout be: a clone under a 0700 directory (mktemp -d)
	// is out of nobody's reach, so the catalog and its data are copied too
	copyFile(t, vega("data/stocks.csv"), filepath.Join(base, "stocks.csv"), 0o644)
	catalog := filepath.Join(base, "catalog.yaml")
	if err := os.WriteFile(catalog, []byte("sources:\n  stocks:\n    driver: csv\n    args:\n      urlpath: '{{ CATALOG_DIR }}/stocks.csv'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(base, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(mnt, uid, gid); err != nil {
		t.Fatal(err)
	}
	asNobody := func(args ...string) *exec.Cmd {
		full := append([]string{"--reuid", "65534", "--regid", "65534", "--clear-groups"}, args...)
		cmd := exec.Command("setpriv", full...)
		cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp"}
		cmd.Dir = base
		return cmd
	}
	var out syncBuffer
	cmd := asNobody(bin, "mount", catalog, mnt)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if isMounted(mnt) {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(stopTimeout):
				_ = cmd.Process.Kill()
			}
			lazyUnmount(mnt)
		}
	}()
	deadline := time.Now().Add(mountTimeout)
	for !isMounted(mnt) {
		select {
		case err := <-done:
			unavailable(t, "intakefs as nobody exited before mounting (%v):\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("not mounted after %v:\n%s", mountTimeout, out.String())
		}
	}
	if info := mountInfoLine(mnt); !strings.Contains(info, "user_id=65534") {
		t.Errorf("mount is not the user's own: %s", info)
	}
	// Without allow_other only the mounting user may read it.
	var want []byte
	r := asNobody("cat", filepath.Join(mnt, "stocks.csv"))
	var got, errb bytes.Buffer
	r.Stdout, r.Stderr = &got, &errb
	if err := r.Run(); err != nil {
		t.Fatalf("cat as nobody: %v: %s", err, errb.String())
	}
	want, err = os.ReadFile(vega("data/stocks.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("stocks.csv read as nobody: %d bytes, want %d", got.Len(), len(want))
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("intakefs exited with %v:\n%s", err, out.String())
		}
	case <-time.After(stopTimeout):
		t.Fatalf("intakefs as nobody did not exit on SIGINT:\n%s", out.String())
	}
	if isMounted(mnt) {
		t.Errorf("%s still mounted after SIGINT", mnt)
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// mountInfoLine is the /proc/self/mountinfo line of a mount point.
func mountInfoLine(mnt string) string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && f[4] == mnt {
			return l
		}
	}
	return ""
}
