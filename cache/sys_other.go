//go:build !unix

package cache

import (
	"errors"
	"os"
)

func lockFile(f *os.File) error { return nil }

func statfsFree(path string) (int64, error) { return 0, errors.ErrUnsupported }

func allocatedBytes(fi os.FileInfo) int64 { return fi.Size() }

func fileID(fi os.FileInfo) uint64 { return 1 }

func fileStateOf(fi os.FileInfo) (fileState, bool) { return fileState{}, false }
