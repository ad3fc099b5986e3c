package decomp

import (
	"os"
	"syscall"
)

// openDirect opens path for writes that bypass the page cache (O_DIRECT),
// or gives nil where the filesystem refuses them (tmpfs, some FUSE and
// network filesystems).
func openDirect(path string) *os.File {
	if !SpoolDirect {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return f
}
