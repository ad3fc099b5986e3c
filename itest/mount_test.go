package itest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/intakefs/intakefs/internal/mountinfo"
)

// daemon is one `intakefs mount` process and its mount point.
type daemon struct {
	t       *testing.T
	Mnt     string // the mount point
	Catalog string
	cmd     *exec.Cmd
	out     *syncBuffer // stdout and stderr
	done    chan struct{}
	waitErr error
	once    sync.Once
	cancel  context.CancelFunc
}

// mount starts `intakefs mount CATALOG MNT --cache-dir CACHE EXTRA...` in a
// process of its own, on a fresh temporary mount point with a fresh cache,
// and waits for the mount to appear. The test's cleanup stops it. When
// mounting is impossible the test is skipped (failed under CI).
func mount(t *testing.T, catalog string, extra ...string) *daemon {
	t.Helper()
	needBinary(t)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		unavailable(t, "FUSE is not available: %v", err)
	}
	base := realTempDir(t)
	mnt := filepath.Join(base, "mnt")
	cache := filepath.Join(base, "cache")
	for _, d := range []string{mnt, cache} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	args := append([]string{"mount", catalog, mnt}, cacheArgs(t, cache)...)
	args = append(args, extra...)
	d := startDaemon(t, catalog, mnt, args)

	deadline := time.Now().Add(mountTimeout)
	for !isMounted(mnt) {
		select {
		case <-d.done:
			d.stop()
			unavailable(t, "intakefs %s exited before mounting (%v):\n%s",
				strings.Join(args, " "), d.waitErr, d.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.stop()
			unavailable(t, "intakefs %s: %s not mounted after %v:\n%s",
				strings.Join(args, " "), mnt, mountTimeout, d.out.String())
		}
	}
	return d
}

var (
	cacheFlagOnce sync.Once
	hasCacheFlag  bool
)

// cacheArgs gives each mount a cache of its own, with --cache-dir when the
// binary has that flag (SPEC §5; an early build may not have it yet).
func cacheArgs(t *testing.T, dir string) []string {
	cacheFlagOnce.Do(func() {
		r := run(t, time.Minute, "", binPath, "mount", "--help")
		hasCacheFlag = strings.Contains(r.stdout+r.stderr, "--cache-dir")
		if !hasCacheFlag {
			t.Logf("note: intakefs mount has no --cache-dir flag; mounting without one")
		}
	})
	if hasCacheFlag {
		return []string{"--cache-dir", dir}
	}
	return nil
}

func startDaemon(t *testing.T, catalog, mnt string, args []string) *daemon {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), daemonTimeout)
	cmd := exec.CommandContext(ctx, binPath, args...)
	// On the time limit, ask politely first (SIGINT unmounts), then kill.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = stopTimeout
	d := &daemon{t: t, Mnt: mnt, Catalog: catalog, cmd: cmd, out: &syncBuffer{},
		done: make(chan struct{}), cancel: cancel}
	cmd.Stdout, cmd.Stderr = d.out, d.out
	cmd.Env = append(os.Environ(), "GORACE=log_path="+raceLogBase+" halt_on_error=0")
	// If this test binary dies (a -timeout panic, say), the daemon is told
	// to unmount rather than left behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", binPath, err)
	}
	go func() {
		d.waitErr = cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(d.stop)
	return d
}

// stop sends SIGINT, waits for the daemon to exit and the mount to go, and
// falls back to SIGKILL and a lazy unmount. It reports a daemon that does
// not unmount on SIGINT, crashed, or raced.
func (d *daemon) stop() {
	d.once.Do(func() {
		t := d.t
		defer d.cancel()
		exitedBefore := false
		select {
		case <-d.done:
			exitedBefore = true
		default:
		}
		if !exitedBefore {
			_ = d.cmd.Process.Signal(os.Interrupt)
			select {
			case <-d.done:
			case <-time.After(stopTimeout):
				t.Errorf("intakefs did not exit within %v of SIGINT; killing it", stopTimeout)
				_ = d.cmd.Process.Kill()
				select {
				case <-d.done:
				case <-time.After(10 * time.Second):
					t.Errorf("intakefs did not exit after SIGKILL")
				}
			}
		}
		if isMounted(d.Mnt) {
			if !exitedBefore {
				t.Errorf("%s still mounted after intakefs exited", d.Mnt)
			}
			lazyUnmount(d.Mnt)
		}
		out := d.out.String()
		if bad := crashSign(out); bad != "" {
			t.Errorf("intakefs output shows a crash: %q", bad)
		}
		if pid := d.cmd.Process.Pid; pid > 0 {
			if race, err := os.ReadFile(raceLogBase + "." + strconv.Itoa(pid)); err == nil && len(race) > 0 {
				t.Errorf("the race detector reported on intakefs:\n%s", race)
			}
		}
		if t.Failed() {
			t.Logf("intakefs %s output:\n%s", strings.Join(d.cmd.Args[1:], " "), tail(out, 60))
		}
	})
}

var goroutineTrace = regexp.MustCompile(`goroutine \d+ \[`)

// crashSign returns the first sign of a Go crash in a process's output.
func crashSign(out string) string {
	for _, bad := range []string{"panic:", "fatal error:", "WARNING: DATA RACE"} {
		if strings.Contains(out, bad) {
			return bad
		}
	}
	return goroutineTrace.FindString(out)
}

// Output is the daemon's stdout and stderr so far.
func (d *daemon) Output() string { return d.out.String() }

// path is a path inside the mount.
func (d *daemon) path(rel string) string { return filepath.Join(d.Mnt, filepath.FromSlash(rel)) }

func lazyUnmount(mnt string) {
	for _, c := range [][]string{{"fusermount3", "-u", "-z", mnt}, {"umount", "-l", mnt}, {"fusermount", "-u", "-z", mnt}} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = exec.CommandContext(ctx, c[0], c[1:]...).Run()
		cancel()
		if !isMounted(mnt) {
			return
		}
	}
}

// isMounted reports whether path is a mount point in /proc/self/mountinfo.
func isMounted(path string) bool {
	for _, m := range mountPoints() {
		if m == path {
			return true
		}
	}
	return false
}

// mountPoints lists the mount points this process sees.
func mountPoints() []string {
	var out []string
	for _, m := range mountinfo.Read() {
		out = append(out, m.Point)
	}
	return out
}

// realTempDir is t.TempDir with symlinks resolved, as mountinfo shows it.
func realTempDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = append([]string{fmt.Sprintf("[… %d lines …]", len(ls)-lines)}, ls[len(ls)-lines:]...)
	}
	return strings.Join(ls, "\n")
}

// syncBuffer is a bytes.Buffer safe for a writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
