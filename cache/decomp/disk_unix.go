//go:build unix

package decomp

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// DiskFree is the space an unprivileged writer may still use on the
// filesystem holding path.
func DiskFree(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(uint64(st.Bavail) * uint64(st.Bsize)), nil
}

// isNoSpace reports a write that failed for want of disk space or quota.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
