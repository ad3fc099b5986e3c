// Package fs is the FUSE adapter: go-fuse nodes over the engine's tree.
// It holds no catalog logic; every node asks the engine and translates
// errors in errno.go.
package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/intakefs/intakefs/engine"
)

// Config holds the mount settings.
type Config struct {
	// EntryTimeout, AttrTimeout and NegativeTimeout are handed to the
	// kernel. They bound how long an edited catalog or data file shows
	// its old version; 5 s is what lets `ls -lR` right after a `find` of
	// a large catalog be answered from the kernel's caches. Missing names
	// stay short: a name a user just added to a catalog is looked for at
	// once.
	EntryTimeout    time.Duration
	AttrTimeout     time.Duration
	NegativeTimeout time.Duration
	AllowOther      bool
	Options         []string // extra -o options
	Debug           bool
	Log             *slog.Logger
	// Observer, if set, is told of every request (for --metrics-addr);
	// without one no request pays for being counted.
	Observer Observer
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{EntryTimeout: 5 * time.Second, AttrTimeout: 5 * time.Second, NegativeTimeout: time.Second}
}

// Mount serves tree at dir. It tries the mount(2) syscall first (root) and
// falls back to fusermount3 (a normal user).
func Mount(dir string, tree *engine.FS, cfg Config) (*fuse.Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	et, at, nt := cfg.EntryTimeout, cfg.AttrTimeout, cfg.NegativeTimeout
	root := newDirNode(tree.Root(), cfg.Log)
	opts := &gofs.Options{
		EntryTimeout:    &et,
		AttrTimeout:     &at,
		NegativeTimeout: &nt,
		UID:             uint32(os.Getuid()),
		GID:             uint32(os.Getgid()),
		MountOptions: fuse.MountOptions{
			FsName:      "intakefs",
			Name:        "intakefs",
			AllowOther:  cfg.AllowOther,
			DirectMount: true,
			Options:     append([]string{"ro"}, cfg.Options...),
			Debug:       cfg.Debug,
			// There are no extended attributes here. Without this every
			// `ls -l` asks for security.selinux and the two POSIX ACLs
			// of each name: three round trips per entry. ENOSYS makes
			// the kernel stop asking for the rest of the mount.
			DisableXAttrs: true,
			MaxReadAhead:  1 << 20,
			// 1 MiB requests (the kernel's max_pages limit) instead of
			// 128 KiB: a quarter of the round trips for big reads
			MaxWrite: 1 << 20,
			// Our reads answer with bytes in memory: go-fuse would copy
			// them into a pipe and splice that to /dev/fuse, one copy
			// more than a writev, and a 1 MiB read plus its header does
			// not fit a 1 MiB pipe (it logs and falls back each time).
			DisableSplice: true,
			// mmap(MAP_SHARED) of a file opened with direct I/O (a first
			// pass over a compressed stream) instead of ENODEV: the
			// content never changes, so there is nothing to keep coherent
			ExtraCapabilities: fuse.CAP_DIRECT_IO_ALLOW_MMAP,
		},
	}
	var raw fuse.RawFileSystem = &noOpendir{RawFileSystem: &pageReads{RawFileSystem: gofs.NewNodeFS(root, opts)}}
	if cfg.Observer != nil {
		raw = &observed{RawFileSystem: raw, obs: cfg.Observer}
	}
	srv, err := fuse.NewServer(raw, dir, &opts.MountOptions)
	if err != nil {
		if strings.Contains(err.Error(), "fusermount exited") && len(cfg.Options) > 0 {
			// go-fuse falls back to fusermount3 when the kernel refuses
			// a direct mount, and reports only its exit status; the
			// usual cause is an option the kernel does not know
			return nil, fmt.Errorf("the kernel refused the mount; check the -o options (%s): %s", strings.Join(cfg.Options, ","), strings.TrimSpace(err.Error()))
		}
		return nil, err
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		return nil, err
	}
	return srv, nil
}

// dirNode is a directory: a catalog, a source's directory, .catalog, or a
// directory of parts.
type dirNode struct {
	gofs.Inode
	// cur is the engine's directory (an engine.Dir). go-fuse keeps the
	// first node it is given for an inode number, while the engine makes
	// a new one each time the parent catalog is loaded again (holding
	// that load's state): each lookup in the parent hands the newest one
	// over (see dir).
	cur atomic.Pointer[dirRef]
	log *slog.Logger

	mu sync.Mutex // guards listed and ents
	// listed is the last listing the engine gave and ents its entries. A
	// listing the engine keeps comes back as the same slice, and the
	// kernel reads a big directory in several requests, each of which
	// opens a stream (see noOpendir): they share one conversion.
	listed []engine.Node
	ents   []fuse.DirEntry
}

// dirRef holds an engine.Dir for an atomic pointer (its kinds are
// several types).
type dirRef struct{ d engine.Dir }

func newDirNode(d engine.Dir, log *slog.Logger) *dirNode {
	n := &dirNode{log: log}
	n.cur.Store(&dirRef{d})
	return n
}

// dir is the engine's directory this node serves: the one the parent's
// latest lookup gave.
func (n *dirNode) dir() engine.Dir { return n.cur.Load().d }

var _ = (gofs.NodeLookuper)((*dirNode)(nil))

func (n *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	child, err := n.dir().Lookup(ctx, name)
	if err != nil {
		return nil, toErrno(n.log, "lookup", n.pathOf(name), err)
	}
	if d, ok := child.(engine.Dir); ok {
		n.fillDir(ctx, &out.Attr, d, false)
		in := n.NewInode(ctx, newDirNode(d, n.log), gofs.StableAttr{Mode: fuse.S_IFDIR, Ino: d.Ino()})
		if dn, ok := in.Operations().(*dirNode); ok && dn.dir() != d {
			// the inode existed: its node serves this lookup's
			// directory from now on (a catalog loaded again)
			dn.cur.Store(&dirRef{d})
		}
		return in, 0
	}
	f := child.(engine.File)
	if err := fillFile(ctx, &out.Attr, f); err != nil {
		return nil, toErrno(n.log, "stat", n.pathOf(name), err)
	}
	if sizeUnknown(f) {
		out.SetAttrTimeout(time.Nanosecond)
	}
	return n.NewInode(ctx, &fileNode{f: f, log: n.log}, gofs.StableAttr{Mode: fuse.S_IFREG, Ino: f.Ino()}), 0
}

// pathOf is a child's path in the mount ("" for the directory itself),
// for log lines: a name alone does not say which catalog it was looked
// up in.
func (n *dirNode) pathOf(name string) string {
	p := n.Path(nil)
	switch {
	case name == "":
		return "/" + p
	case p == "":
		return "/" + name
	}
	return "/" + p + "/" + name
}

var _ = (gofs.NodeReaddirer)((*dirNode)(nil))

func (n *dirNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	ns, err := n.dir().ReadDir(ctx)
	if err != nil {
		return nil, toErrno(n.log, "readdir", n.pathOf(""), err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(ns) == 0 || len(ns) != len(n.listed) || &ns[0] != &n.listed[0] {
		n.ents = make([]fuse.DirEntry, 0, len(ns))
		for _, c := range ns {
			mode := uint32(fuse.S_IFREG)
			if c.IsDir() {
				mode = fuse.S_IFDIR
			}
			n.ents = append(n.ents, fuse.DirEntry{Name: c.Name(), Mode: mode, Ino: c.Ino()})
		}
		n.listed = ns
	}
	// a copy: go-fuse writes each entry's offset into the stream's slice
	return gofs.NewListDirStream(append([]fuse.DirEntry(nil), n.ents...)), 0
}

var _ = (gofs.NodeGetattrer)((*dirNode)(nil))

func (n *dirNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fillDir(ctx, &out.Attr, n.dir(), true)
	return 0
}

var _ = (gofs.NodeStatfser)((*dirNode)(nil))

// Statfs: a read-only file system with no space of its own; the name
// length is what tools check.
func (n *dirNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize = 4096
	out.Frsize = 4096
	out.NameLen = 255
	return 0
}

var _ = (gofs.NodeOpendirer)((*dirNode)(nil))

func (n *dirNode) Opendir(ctx context.Context) syscall.Errno { return 0 }

// fillDir gives a directory the time its contents were loaded as its
// mtime. The kernel caches directory listings (see noOpendir) and drops
// one when a refresh of the attributes shows a new mtime, so a directory
// that cannot say when it changed gets the current time: its listing is
// then cached at most for the attribute timeout. A lookup (and so every
// entry of a listing) gives the version known without loading anything;
// GETATTR, which the kernel sends before reusing a listing whose
// attributes expired, checks.
func (n *dirNode) fillDir(ctx context.Context, a *fuse.Attr, d engine.Dir, check bool) {
	a.Mode = fuse.S_IFDIR | 0o555
	a.Ino = d.Ino()
	a.Nlink = 2
	t := time.Now()
	if v, ok := d.(engine.Versioned); ok && check {
		t = v.Version(ctx)
	} else if ok {
		t = v.KnownVersion()
	}
	a.SetTimes(&t, &t, &t)
}

func fillFile(ctx context.Context, a *fuse.Attr, f engine.File) error {
	st, err := f.Stat(ctx)
	if err != nil {
		return err
	}
	a.Mode = fuse.S_IFREG | 0o444
	a.Ino = f.Ino()
	a.Nlink = 1
	a.Size = uint64(st.Size)
	a.Blocks = (a.Size + 511) / 512
	a.Blksize = 1 << 20
	t := st.ModTime
	a.SetTimes(&t, &t, &t)
	return nil
}

// fileNode is a file: a source's data, a part, or a generated file.
type fileNode struct {
	gofs.Inode
	f   engine.File
	log *slog.Logger

	mu sync.Mutex // guards plainOpen; taken inside go-fuse's backingMu
	// plainOpen counts this inode's open handles that are not
	// passthrough (see handle.PassthroughFd).
	plainOpen int
}

var _ = (gofs.NodeGetattrer)((*fileNode)(nil))

func (n *fileNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if sizeUnknown(n.f) {
		out.SetTimeout(time.Nanosecond)
	}
	if err := fillFile(ctx, &out.Attr, n.f); err != nil {
		return toErrno(n.log, "stat", "/"+n.Path(nil), err)
	}
	return 0
}

// sizeUnknown: the size of a file still being decompressed for the first
// time changes (0, then exact once it is open: see engine.FS.statSize),
// so the kernel must not cache its attributes.
func sizeUnknown(f engine.File) bool {
	d, ok := f.(engine.DirectIOer)
	return ok && d.DirectIO()
}

var _ = (gofs.NodeOpener)((*fileNode)(nil))

func (n *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	h, err := n.f.Open(ctx)
	if err != nil {
		return nil, 0, toErrno(n.log, "open", "/"+n.Path(nil), err)
	}
	var fuseFlags uint32
	if kc, ok := n.f.(engine.KeepCacher); ok && kc.KeepCache() {
		fuseFlags |= fuse.FOPEN_KEEP_CACHE
	}
	if d, ok := n.f.(engine.DirectIOer); ok && d.DirectIO() {
		// size unknown or changing: every read comes here, to EOF
		fuseFlags = fuse.FOPEN_DIRECT_IO
		// The kernel keeps even a 1 ns attribute timeout for a jiffy, so
		// an fstat right after a stat (DuckDB does both) would get the
		// size shown before the open: drop the attributes now, so that it
		// asks us and gets the exact size an open file has.
		if errno := n.NotifyContent(-1, 0); errno != 0 {
			n.log.Debug("cannot drop cached attributes", "file", n.f.Name(), "errno", errno)
		}
	}
	if d, ok := h.(engine.Decompressor); ok && fuseFlags&fuse.FOPEN_DIRECT_IO == 0 && d.Decompressing() {
		// The first pass over a compressed stream: the spool is the
		// cache, so the kernel needs no copy of its own (it would cost
		// a copy per byte and as much memory again); the next open of
		// the complete spool is passthrough or keeps the page cache.
		fuseFlags = fuse.FOPEN_DIRECT_IO
	}
	fh := &handle{h: h, node: n, log: n.log, direct: fuseFlags&fuse.FOPEN_DIRECT_IO != 0, fd: -1}
	if lf, ok := h.(engine.LocalFiler); ok {
		if f := lf.LocalFile(ctx); f != nil {
			fh.fd = int(f.Fd())
		}
	}
	return fh, fuseFlags, 0
}

var _ = (gofs.FilePassthroughFder)((*handle)(nil))

// PassthroughFd offers the local file an open file is exactly (a
// complete spool, a cached object): where the kernel allows it (root,
// Linux 6.9+), reads then go straight to that file without a round trip
// through this process.
//
// go-fuse asks only while the inode has no backing file; once one is
// registered, every later open of the inode shares it. But go-fuse gives
// up a reference to the backing file when ANY handle of the inode is
// released, passthrough or not, and drops the backing file at zero: with
// a plain handle (opened while the file was being decompressed) and a
// passthrough one open side by side, closing the plain one dropped the
// backing file under the other, and the kernel refused the next open
// with EIO. So no backing file is offered while plain handles are open;
// each handle that is answered "no" is counted as plain until released.
func (h *handle) PassthroughFd() (int, bool) {
	n := h.node
	n.mu.Lock()
	defer n.mu.Unlock()
	if h.fd >= 0 && n.plainOpen == 0 {
		return h.fd, true
	}
	if !h.plain {
		h.plain = true
		n.plainOpen++
	}
	return 0, false
}

var _ = (gofs.NodeSetattrer)((*fileNode)(nil))

func (n *fileNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

// handle is an open file.
type handle struct {
	h    engine.Handle
	node *fileNode // for the path in log lines, made only on an error
	// direct: opened with FOPEN_DIRECT_IO, so a short read reaches the
	// reader as it is
	direct bool
	log    *slog.Logger
	// fd is the local file the handle reads, for passthrough (-1: none)
	fd int
	// plain: counted in node.plainOpen (node.mu)
	plain bool
}

var _ = (gofs.FileReader)((*handle)(nil))

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.h.ReadAt(ctx, dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		if n > 0 && h.direct {
			// The good bytes before the damage first; the next read,
			// which starts at the damage, gets the error. (Only with
			// direct I/O: the page cache takes a short read for the end
			// of the file and would quietly shrink it.)
			return &damagedRead{dest[:n]}, 0
		}
		return nil, toErrno(h.log, "read", "/"+h.node.Path(nil), err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

var _ = (gofs.FileReleaser)((*handle)(nil))

func (h *handle) Release(ctx context.Context) syscall.Errno {
	// go-fuse calls this before it gives up the handle's reference to the
	// inode's backing file (see PassthroughFd)
	h.node.mu.Lock()
	if h.plain {
		h.plain = false
		h.node.plainOpen--
	}
	h.node.mu.Unlock()
	if err := h.h.Close(); err != nil {
		return toErrno(h.log, "release", "/"+h.node.Path(nil), err)
	}
	return 0
}
