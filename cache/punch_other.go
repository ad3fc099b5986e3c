//go:build !linux

package cache

import (
	"errors"
	"os"
)

// punchHole is Linux-only; elsewhere an evicted block's space comes back
// when its object's directory is deleted.
func punchHole(f *os.File, off, n int64) error { return errors.ErrUnsupported }
