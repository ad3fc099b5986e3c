package itest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMountHelper: intakefs as an fstab / mount -t fuse.intakefs helper.
// mount.fuse3 runs "intakefs CATALOG MOUNTPOINT -o OPTIONS" and expects it
// to return once mounted, leaving the daemon in the background.
func TestMountHelper(t *testing.T) {
	needVega(t)
	h := newMountHelper(t)
	dir := realTempDir(t)
	mnt := h.mountPoint(t, dir)
	logFile := filepath.Join(dir, "intakefs.log")

	// a cache directory of its own: the default one may be in use by a
	// mount outside the tests
	cacheOpt := ",cache_dir=" + filepath.Join(dir, "cache")
	out, err := h.mount(demoCatalog, mnt, "ro,nodev,param.json_encoding=latin-1,log_file="+logFile+cacheOpt)
	if err != nil {
		t.Fatalf("mount.fuse3: %v\n%s", err, out)
	}
	if !isMounted(mnt) {
		t.Fatalf("mount.fuse3 returned but %s is not mounted", mnt)
	}
	desc, err := withTimeout(t, "read", func() ([]byte, error) { return os.ReadFile(filepath.Join(mnt, "cars", "describe.yaml")) })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(desc), "latin-1") {
		t.Errorf("param.json_encoding=latin-1 did not reach the catalog:\n%s", desc)
	}
	if b, _ := os.ReadFile(logFile); !strings.Contains(string(b), "mounted") {
		t.Errorf("log_file has no start-up line: %q", b)
	}
	h.unmount(t, mnt)
	// the background daemon records its end in log_file too
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(logFile)
		if strings.Contains(string(b), "msg=unmounted") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("log_file has no unmount line after 10 s: %q", b)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A catalog that does not exist: one line of error, non-zero, nothing mounted.
	out, err = h.mount(filepath.Join(dir, "missing.yaml"), mnt, "ro"+cacheOpt)
	if err == nil {
		t.Fatalf("mounting a missing catalog succeeded:\n%s", out)
	}
	if msg := strings.TrimSpace(string(out)); strings.Count(msg, "\n") > 0 || !strings.Contains(msg, "missing.yaml") {
		t.Errorf("want one line naming missing.yaml, got:\n%s", msg)
	}
	if isMounted(mnt) {
		t.Errorf("%s mounted after a failed mount", mnt)
	}
}

// mountHelper runs mount.fuse3 with this build of intakefs as the helper
// of type fuse.intakefs, as an fstab entry would.
type mountHelper struct {
	path string
	env  []string
}

func newMountHelper(t *testing.T) *mountHelper {
	t.Helper()
	needBinary(t)
	path, err := exec.LookPath("mount.fuse3")
	if err != nil {
		unavailable(t, "mount.fuse3 (Debian fuse3) not found: %v", err)
	}
	return &mountHelper{path: path, env: append(os.Environ(), "PATH="+filepath.Dir(binPath)+":"+os.Getenv("PATH"))}
}

// mountPoint makes dir/mnt, unmounted at the end of the test.
func (h *mountHelper) mountPoint(t *testing.T, dir string) string {
	t.Helper()
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if isMounted(mnt) {
			umount(mnt)
			lazyUnmount(mnt)
		}
	})
	return mnt
}

// mount runs "mount.fuse3 CATALOG MNT -t intakefs -o OPTS": it returns
// once the background daemon has mounted, or failed.
func (h *mountHelper) mount(catalog, mnt, opts string) ([]byte, error) {
	cmd := exec.Command(h.path, catalog, mnt, "-t", "intakefs", "-o", opts)
	cmd.Env = h.env
	return cmd.CombinedOutput()
}

// unmount unmounts mnt and waits for its background daemon to exit.
func (h *mountHelper) unmount(t *testing.T, mnt string) {
	t.Helper()
	umount(mnt)
	deadline := time.Now().Add(stopTimeout)
	for daemonServing(mnt) {
		if time.Now().After(deadline) {
			t.Fatalf("the background daemon for %s did not exit after umount", mnt)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if isMounted(mnt) {
		t.Fatalf("%s still mounted", mnt)
	}
}

func umount(mnt string) {
	for _, c := range [][]string{{"umount", mnt}, {"fusermount3", "-u", mnt}} {
		if exec.Command(c[0], c[1:]...).Run() == nil {
			return
		}
	}
}

// daemonServing reports whether an intakefs process serves mnt.
func daemonServing(mnt string) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 3 && filepath.Base(args[0]) == "intakefs" && args[1] == "mount" && args[3] == mnt {
			return true
		}
	}
	return false
}
