//go:build !cgo

package decomp

import (
	"bufio"
	"errors"
)

// haveNativeZstd: built without cgo, so without libzstd; zstd decodes in
// a child zstd process or in Go.
const haveNativeZstd = false

type nativeZstd struct{}

func newNativeZstd(*bufio.Reader) (*nativeZstd, error) {
	return nil, errors.New("zstd: built without cgo")
}

func (*nativeZstd) Read([]byte) (int, error) { return 0, errors.New("zstd: built without cgo") }
func (*nativeZstd) Close()                   {}
