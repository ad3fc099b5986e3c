//go:build unix

package cache

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/intakefs/intakefs/internal/flock"
)

// lockFile takes an exclusive, non-blocking lock on f (see flock).
func lockFile(f *os.File) error {
	err := flock.TryLock(f)
	if errors.Is(err, flock.ErrHeld) {
		return errLockHeld
	}
	return err
}

// statfsFree is the space an unprivileged writer may still use on the
// filesystem holding path.
func statfsFree(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(uint64(st.Bavail) * uint64(st.Bsize)), nil
}

// allocatedBytes is the disk space a file really takes (sparse files take
// less than their size).
func allocatedBytes(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return fi.Size()
}

// fileID identifies a file (device and inode), to notice a replaced file.
func fileID(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)<<48 ^ uint64(st.Ino) | 1
	}
	return 1
}

// fileStateOf is what a clean shutdown records of a file (stateOf in
// clean.go): any write, truncation, replacement or hole punched since
// changes its inode, size, mtime or ctime.
func fileStateOf(fi os.FileInfo) (fileState, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileState{}, false
	}
	return fileState{Dev: uint64(st.Dev), Ino: uint64(st.Ino), Size: st.Size,
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}, true
}
