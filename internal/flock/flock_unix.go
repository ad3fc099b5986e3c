//go:build unix

// Package flock takes advisory file locks that go away with the process
// holding them, so a crashed daemon never leaves a stale lock behind.
package flock

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// ErrHeld is a lock that another process holds.
var ErrHeld = errors.New("lock held by another process")

// TryLock takes an exclusive, non-blocking flock(2) on f.
func TryLock(f *os.File) error {
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
	if errors.Is(ferr, unix.EWOULDBLOCK) {
		return ErrHeld
	}
	return ferr
}
