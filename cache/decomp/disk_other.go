//go:build !unix

package decomp

import "errors"

// DiskFree is not known here.
func DiskFree(path string) (int64, error) {
	return 0, errors.New("decomp: free disk space is not known on this system")
}

// isNoSpace cannot tell here: a failed write is an I/O error.
func isNoSpace(err error) bool { return false }
