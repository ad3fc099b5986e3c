//go:build unix

package decomp

import (
	"os"

	"github.com/intakefs/intakefs/internal/flock"
)

// tryLock takes an exclusive, non-blocking lock on f; it goes away with
// the process, so a partial spool of a dead writer is unlocked.
func tryLock(f *os.File) error { return flock.TryLock(f) }
