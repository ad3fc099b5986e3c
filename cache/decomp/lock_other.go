//go:build !unix

package decomp

import "os"

// tryLock has no flock here: partial spools are only cleaned at start by
// a caller that owns the directory.
func tryLock(f *os.File) error { return nil }
