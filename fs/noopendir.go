package fs

import (
	"github.com/hanwen/go-fuse/v2/fuse"
)

// noOpendir answers OPENDIR with ENOSYS. The kernel (Linux 5.1+) then
// stops sending OPENDIR and RELEASEDIR for the whole mount, which halves
// the round trips of a tree walk (find, ls -R, du): each directory costs
// only its READDIRPLUS requests. It also makes the kernel keep each
// directory's listing in its page cache (FOPEN_CACHE_DIR is the default
// without OPENDIR), dropped when the directory's mtime changes on an
// attribute refresh; dirNode.fillDir keeps that mtime honest.
//
// Without a handle from OPENDIR the kernel sends READDIRPLUS with handle
// 0. Each such request opens a fresh go-fuse directory stream, seeks it
// to the requested offset, reads, and releases it: the engine's listings
// are cached, so the stream costs a slice copy, never a catalog load.
type noOpendir struct {
	fuse.RawFileSystem
}

func (w *noOpendir) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return fuse.ENOSYS
}

func (w *noOpendir) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	if in.Fh != 0 {
		return w.RawFileSystem.ReadDirPlus(cancel, in, out)
	}
	return w.transient(cancel, in, func(r *fuse.ReadIn) fuse.Status {
		return w.RawFileSystem.ReadDirPlus(cancel, r, out)
	})
}

func (w *noOpendir) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	if in.Fh != 0 {
		return w.RawFileSystem.ReadDir(cancel, in, out)
	}
	return w.transient(cancel, in, func(r *fuse.ReadIn) fuse.Status {
		return w.RawFileSystem.ReadDir(cancel, r, out)
	})
}

// transient runs read on a directory stream opened for this one request.
func (w *noOpendir) transient(cancel <-chan struct{}, in *fuse.ReadIn, read func(*fuse.ReadIn) fuse.Status) fuse.Status {
	var open fuse.OpenOut
	st := w.RawFileSystem.OpenDir(cancel, &fuse.OpenIn{InHeader: in.InHeader, Flags: in.Flags}, &open)
	if !st.Ok() {
		return st
	}
	defer w.RawFileSystem.ReleaseDir(&fuse.ReleaseIn{InHeader: in.InHeader, Fh: open.Fh})
	r := *in
	r.Fh = open.Fh
	return read(&r)
}

// WithoutOpendir serves raw with OPENDIR refused as intakefs's own mount
// does, for scripts/bench/fusefloor: the floor a walk of intakefs is
// compared with must make the same requests.
func WithoutOpendir(raw fuse.RawFileSystem) fuse.RawFileSystem {
	return &noOpendir{RawFileSystem: raw}
}
