//go:build unix

package decomp

import (
	"os"

	"golang.org/x/sys/unix"
)

// tryLock takes an exclusive, non-blocking flock(2) on f; it goes away
// with the process, so a partial spool of a dead writer is unlocked.
func tryLock(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		ferr = unix.Flock(int(fd), unix.LOCK_EX|unix.LOCK_NB)
	}); err != nil {
		return err
	}
	return ferr
}
