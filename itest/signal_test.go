package itest

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSignalUnmounts: SIGINT and SIGTERM each make the daemon unmount and
// exit. While a file of the mount is open the unmount is busy: the daemon
// may then go on serving (as gcsfuse does), but a second signal must end it.
func TestSignalUnmounts(t *testing.T) {
	needVega(t)
	for _, c := range []struct {
		name     string
		sig      os.Signal
		openFile bool
	}{
		{"SIGINT", os.Interrupt, false},
		{"SIGTERM", syscall.SIGTERM, false},
		{"SIGTERM with a file open", syscall.SIGTERM, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := mount(t, demoCatalog)
			if c.openFile {
				f, err := withTimeout(t, "open", func() (*os.File, error) { return os.Open(d.path("stocks.csv")) })
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				buf := make([]byte, 100)
				if _, err := withTimeout(t, "read", func() (int, error) { return f.Read(buf) }); err != nil {
					t.Fatal(err)
				}
			}
			if err := d.cmd.Process.Signal(c.sig); err != nil {
				t.Fatal(err)
			}
			wait := stopTimeout
			if c.openFile {
				wait = 3 * time.Second
			}
			select {
			case <-d.done:
				t.Logf("exited after %v: %v", c.sig, d.waitErr)
				// says so, as it said "mounted"
				if want := "unmounted " + d.Mnt; !strings.Contains(d.out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, d.out.String())
				}
			case <-time.After(wait):
				if !c.openFile {
					t.Fatalf("intakefs still running %v after %v", wait, c.sig)
				}
				t.Logf("still serving %v after %v with a file open; signalling again", wait, c.sig)
				if _, err := withTimeout(t, "read", func() ([]byte, error) { return os.ReadFile(d.path("cars.json")) }); err != nil {
					t.Errorf("still mounted, but reading fails: %v", err)
				}
				if err := d.cmd.Process.Signal(c.sig); err != nil {
					t.Fatal(err)
				}
				select {
				case <-d.done:
					t.Logf("exited after a second %v: %v", c.sig, d.waitErr)
				case <-time.After(stopTimeout):
					t.Fatalf("intakefs still running %v after a second %v", stopTimeout, c.sig)
				}
			}
			if isMounted(d.Mnt) {
				t.Errorf("%s still mounted after intakefs exited on %v", d.Mnt, c.sig)
			}
		})
	}
}
