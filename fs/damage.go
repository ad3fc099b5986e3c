package fs

import (
	"github.com/hanwen/go-fuse/v2/fuse"
)

// damagedRead is the answer to a read that reaches damage in a
// compressed stream: the good bytes before it, for a reader to get them
// and then EIO at the damage (see handle.Read).
type damagedRead struct{ data []byte }

func (d *damagedRead) Bytes([]byte) ([]byte, fuse.Status) { return d.data, fuse.OK }
func (d *damagedRead) Size() int                          { return len(d.data) }
func (d *damagedRead) Done()                              {}

// pageReads keeps short answers at damage away from the page cache. The
// kernel takes a short answer to a page-cache read (readahead, an mmap
// page fault) for the end of the file and fills the rest of the page with
// zeros: an mmap reader would get invented bytes and no error. Reads for
// the page cache are the ones without FUSE_READ_LOCKOWNER (the kernel
// sets it on every direct read, which is where the good bytes are
// wanted): those get EIO for the whole request, so the page that holds
// the damage faults with SIGBUS.
type pageReads struct {
	fuse.RawFileSystem
}

func (p *pageReads) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	res, st := p.RawFileSystem.Read(cancel, in, buf)
	if _, damaged := res.(*damagedRead); damaged && st == fuse.OK && in.ReadFlags&fuse.READ_LOCKOWNER == 0 {
		return nil, fuse.EIO
	}
	return res, st
}
