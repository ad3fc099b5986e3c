package fs

import (
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Op is a FUSE operation as an Observer is told of it. Its String is the
// kernel's opcode name in lower case (--debug-fuse shows it upper case).
type Op uint8

// NumOps is the number of operations: every Op is below it, so an
// Observer can keep its state in an array indexed by Op.
const NumOps = opCount

const (
	opLookup Op = iota
	opForget
	opGetattr
	opSetattr
	opMknod
	opMkdir
	opUnlink
	opRmdir
	opRename
	opLink
	opSymlink
	opReadlink
	opAccess
	opGetxattr
	opListxattr
	opSetxattr
	opRemovexattr
	opCreate
	opTmpfile
	opOpen
	opRead
	opLseek
	opGetlk
	opSetlk
	opSetlkw
	opRelease
	opWrite
	opCopyFileRange
	opIoctl
	opFlush
	opFsync
	opFallocate
	opOpendir
	opReaddir
	opReaddirplus
	opReleasedir
	opFsyncdir
	opStatfs
	opStatx
	opCount
)

var opNames = [opCount]string{
	"lookup", "forget", "getattr", "setattr", "mknod", "mkdir", "unlink", "rmdir", "rename",
	"link", "symlink", "readlink", "access", "getxattr", "listxattr", "setxattr", "removexattr",
	"create", "tmpfile", "open", "read", "lseek", "getlk", "setlk", "setlkw", "release", "write",
	"copy_file_range", "ioctl", "flush", "fsync", "fallocate", "opendir", "readdir", "readdirplus",
	"releasedir", "fsyncdir", "statfs", "statx",
}

func (o Op) String() string { return opNames[o] }

// Observer is told of every request the file system answers: which
// operation, the errno it answered (0: success) and how long the answer
// took. It is called on the request's own goroutine, so it must be cheap
// and safe for concurrent use: no lock per call.
type Observer interface {
	Observe(op Op, errno syscall.Errno, took time.Duration)
}

// observed tells an Observer of each request that reaches raw. It is the
// outermost layer, so it counts what the kernel was answered: the OPENDIR
// that noOpendir refuses, the read that pageReads turns into EIO.
// Requests go-fuse answers by itself (INIT, INTERRUPT, the extended
// attributes that DisableXAttrs refuses) never get here.
//
// Each method passes time.Now() before the inner call in one argument
// list: Go evaluates the calls of an argument list left to right, so the
// start is taken before the request is served.
type observed struct {
	fuse.RawFileSystem
	obs Observer
}

func (o *observed) done(op Op, start time.Time, st fuse.Status) fuse.Status {
	o.obs.Observe(op, syscall.Errno(st), time.Since(start))
	return st
}

// Lookup counts a missing name as ENOENT: go-fuse answers it with a
// negative entry (node 0, kept for --negative-timeout) and no error, but
// ENOENT is what the caller gets, and the count a reader looks for.
func (o *observed) Lookup(c <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Lookup(c, h, name, out)
	if st == fuse.OK && out.NodeId == 0 {
		o.done(opLookup, start, fuse.ENOENT)
		return st
	}
	return o.done(opLookup, start, st)
}

// Forget has no answer; a BATCH_FORGET calls it once per inode, so the
// count is of inodes forgotten.
func (o *observed) Forget(nodeid, nlookup uint64) {
	start := time.Now()
	o.RawFileSystem.Forget(nodeid, nlookup)
	o.done(opForget, start, fuse.OK)
}

func (o *observed) GetAttr(c <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	return o.done(opGetattr, time.Now(), o.RawFileSystem.GetAttr(c, in, out))
}

func (o *observed) SetAttr(c <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	return o.done(opSetattr, time.Now(), o.RawFileSystem.SetAttr(c, in, out))
}

func (o *observed) Mknod(c <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	return o.done(opMknod, time.Now(), o.RawFileSystem.Mknod(c, in, name, out))
}

func (o *observed) Mkdir(c <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	return o.done(opMkdir, time.Now(), o.RawFileSystem.Mkdir(c, in, name, out))
}

func (o *observed) Unlink(c <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return o.done(opUnlink, time.Now(), o.RawFileSystem.Unlink(c, h, name))
}

func (o *observed) Rmdir(c <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return o.done(opRmdir, time.Now(), o.RawFileSystem.Rmdir(c, h, name))
}

func (o *observed) Rename(c <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	return o.done(opRename, time.Now(), o.RawFileSystem.Rename(c, in, oldName, newName))
}

func (o *observed) Link(c <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	return o.done(opLink, time.Now(), o.RawFileSystem.Link(c, in, name, out))
}

func (o *observed) Symlink(c <-chan struct{}, h *fuse.InHeader, to, name string, out *fuse.EntryOut) fuse.Status {
	return o.done(opSymlink, time.Now(), o.RawFileSystem.Symlink(c, h, to, name, out))
}

func (o *observed) Readlink(c <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	start := time.Now()
	b, st := o.RawFileSystem.Readlink(c, h)
	return b, o.done(opReadlink, start, st)
}

func (o *observed) Access(c <-chan struct{}, in *fuse.AccessIn) fuse.Status {
	return o.done(opAccess, time.Now(), o.RawFileSystem.Access(c, in))
}

func (o *observed) GetXAttr(c <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := o.RawFileSystem.GetXAttr(c, h, attr, dest)
	return n, o.done(opGetxattr, start, st)
}

func (o *observed) ListXAttr(c <-chan struct{}, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := o.RawFileSystem.ListXAttr(c, h, dest)
	return n, o.done(opListxattr, start, st)
}

func (o *observed) SetXAttr(c <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	return o.done(opSetxattr, time.Now(), o.RawFileSystem.SetXAttr(c, in, attr, data))
}

func (o *observed) RemoveXAttr(c <-chan struct{}, h *fuse.InHeader, attr string) fuse.Status {
	return o.done(opRemovexattr, time.Now(), o.RawFileSystem.RemoveXAttr(c, h, attr))
}

func (o *observed) Create(c <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	return o.done(opCreate, time.Now(), o.RawFileSystem.Create(c, in, name, out))
}

func (o *observed) Tmpfile(c <-chan struct{}, in *fuse.CreateIn, out *fuse.CreateOut) fuse.Status {
	return o.done(opTmpfile, time.Now(), o.RawFileSystem.Tmpfile(c, in, out))
}

func (o *observed) Open(c <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return o.done(opOpen, time.Now(), o.RawFileSystem.Open(c, in, out))
}

func (o *observed) Read(c <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	start := time.Now()
	res, st := o.RawFileSystem.Read(c, in, buf)
	return res, o.done(opRead, start, st)
}

func (o *observed) Lseek(c <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	return o.done(opLseek, time.Now(), o.RawFileSystem.Lseek(c, in, out))
}

func (o *observed) GetLk(c <-chan struct{}, in *fuse.LkIn, out *fuse.LkOut) fuse.Status {
	return o.done(opGetlk, time.Now(), o.RawFileSystem.GetLk(c, in, out))
}

func (o *observed) SetLk(c <-chan struct{}, in *fuse.LkIn) fuse.Status {
	return o.done(opSetlk, time.Now(), o.RawFileSystem.SetLk(c, in))
}

func (o *observed) SetLkw(c <-chan struct{}, in *fuse.LkIn) fuse.Status {
	return o.done(opSetlkw, time.Now(), o.RawFileSystem.SetLkw(c, in))
}

func (o *observed) Release(c <-chan struct{}, in *fuse.ReleaseIn) {
	start := time.Now()
	o.RawFileSystem.Release(c, in)
	o.done(opRelease, start, fuse.OK)
}

func (o *observed) Write(c <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := o.RawFileSystem.Write(c, in, data)
	return n, o.done(opWrite, start, st)
}

// Writev: go-fuse calls Write after a Writev that answers ENOSYS, for
// the same request; that one is counted there.
func (o *observed) Writev(c <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := o.RawFileSystem.Writev(c, in, data)
	if st == fuse.ENOSYS {
		return n, st
	}
	return n, o.done(opWrite, start, st)
}

func (o *observed) CopyFileRange(c <-chan struct{}, in *fuse.CopyFileRangeIn) (uint32, fuse.Status) {
	start := time.Now()
	n, st := o.RawFileSystem.CopyFileRange(c, in)
	return n, o.done(opCopyFileRange, start, st)
}

func (o *observed) Ioctl(c <-chan struct{}, in *fuse.IoctlIn, inbuf []byte, out *fuse.IoctlOut, outbuf []byte) fuse.Status {
	return o.done(opIoctl, time.Now(), o.RawFileSystem.Ioctl(c, in, inbuf, out, outbuf))
}

func (o *observed) Flush(c <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	return o.done(opFlush, time.Now(), o.RawFileSystem.Flush(c, in))
}

func (o *observed) Fsync(c <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return o.done(opFsync, time.Now(), o.RawFileSystem.Fsync(c, in))
}

func (o *observed) Fallocate(c <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	return o.done(opFallocate, time.Now(), o.RawFileSystem.Fallocate(c, in))
}

func (o *observed) OpenDir(c <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return o.done(opOpendir, time.Now(), o.RawFileSystem.OpenDir(c, in, out))
}

func (o *observed) ReadDir(c <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return o.done(opReaddir, time.Now(), o.RawFileSystem.ReadDir(c, in, out))
}

func (o *observed) ReadDirPlus(c <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return o.done(opReaddirplus, time.Now(), o.RawFileSystem.ReadDirPlus(c, in, out))
}

func (o *observed) ReleaseDir(in *fuse.ReleaseIn) {
	start := time.Now()
	o.RawFileSystem.ReleaseDir(in)
	o.done(opReleasedir, start, fuse.OK)
}

func (o *observed) FsyncDir(c <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return o.done(opFsyncdir, time.Now(), o.RawFileSystem.FsyncDir(c, in))
}

func (o *observed) StatFs(c <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	return o.done(opStatfs, time.Now(), o.RawFileSystem.StatFs(c, h, out))
}

func (o *observed) Statx(c <-chan struct{}, in *fuse.StatxIn, out *fuse.StatxOut) fuse.Status {
	return o.done(opStatx, time.Now(), o.RawFileSystem.Statx(c, in, out))
}
