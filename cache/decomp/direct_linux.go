package decomp

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
)

// openDirect opens path for reads and writes that bypass the page cache
// (O_DIRECT), or gives nil where the filesystem refuses them (tmpfs, some
// FUSE and network filesystems).
func openDirect(path string) *os.File {
	if !SpoolDirect {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return f
}

// directReadMin is the smallest read worth an O_DIRECT read: smaller ones
// go through the page cache, which then keeps them.
const directReadMin = 64 << 10

// directBufs are aligned buffers for O_DIRECT reads of up to
// directBufSize bytes.
const directBufSize = 1<<20 + 2*directAlign

var directBufs = sync.Pool{New: func() any { return newWindow(1, directBufSize)[0] }}

// readSpoolFile reads len(p) bytes at off of a spool file: a big read
// with O_DIRECT through dr when there is one, else through the page
// cache. dr is only open for a spool this process wrote with O_DIRECT,
// whose bytes the page cache does not hold: a reader that waited for the
// size and then reads it all would otherwise fill the page cache with it,
// which is what costs most on a VM whose memory the host backs lazily
// (see SpoolDirect). (preadv2's RWF_NOWAIT is no probe for what is
// cached: it starts readahead into the page cache before it gives up.)
func readSpoolFile(f, dr *os.File, p []byte, off int64) (int, error) {
	if dr == nil || len(p) < directReadMin {
		return f.ReadAt(p, off)
	}
	k := 0
	c := directBufs.Get().(*chunk)
	defer directBufs.Put(c)
	for k < len(p) {
		pos := off + int64(k)
		start := pos &^ (directAlign - 1)
		want := min(int64(len(p)-k), directBufSize-2*directAlign)
		end := (pos + want + directAlign - 1) &^ (directAlign - 1)
		got, err := dr.ReadAt(c.buf[:end-start], start)
		if got > int(pos-start) {
			k += copy(p[k:], c.buf[pos-start:got])
		}
		if err != nil || got < int(end-start) {
			if k < len(p) {
				if err == nil || errors.Is(err, io.EOF) {
					err = io.EOF
				}
				return k, err
			}
			break
		}
	}
	return k, nil
}
