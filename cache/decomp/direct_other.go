//go:build !linux

package decomp

import "os"

// openDirect: O_DIRECT is a Linux flag; elsewhere spools are written
// through the page cache.
func openDirect(path string) *os.File { return nil }

func readSpoolFile(f, dr *os.File, p []byte, off int64) (int, error) { return f.ReadAt(p, off) }
