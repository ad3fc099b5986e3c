package cache

// Cache is the persistent block cache: the Opener for remote stores.
//
// # Blocks and identity
//
// An object version is cut into fixed-size blocks (Options.BlockSize,
// 64 KiB by default: the unit a random reader pays for, so small that a
// Parquet reader of one column fetches little more than its pages). Everything is keyed by keyOf(URL, Identity(), Size):
// a changed object has another key, so its old blocks can never be served
// for it; a handle pins the key it was opened with, so one handle never
// sees two versions (blocks it still has to fetch are read with the
// store's ReadVersion when it has one — If-Match / generation — so that a
// rewrite gives an error, not new bytes). Opening a URL with a new identity
// deletes the older versions' blocks (at once if unused, else when their
// last handle closes).
//
// # Crash safety
//
// Blocks live at their own offsets in one sparse data file per object
// version; a 16-byte index record per block holds its length and crc32c,
// plus a check over the record itself. A block is written data first,
// record second, and nothing is fsynced. Every block found on disk at
// start is unverified: its first read reads the whole block and checks the
// crc32c before serving a byte, and a block that fails (bytes that never
// reached the disk, a torn record, a truncated or edited file) is dropped
// and fetched again (unless the last run ended with a clean Close, which
// made its blocks durable and says so: clean.go). Blocks this process
// wrote or verified are trusted for
// the rest of its life (and only re-read for the bytes asked for), because
// the only writer of the file is this process (the directory lock), and it
// clears a record and punches the hole only for a block no one can read
// any more (state evicting); a data file found missing, shorter than its
// object or replaced when it is reopened loses that trust. (Bytes edited
// in place by another program while the daemon runs are not noticed until
// the next start.) A crash at any moment therefore leaves each block either
// absent, or present with bytes that are checked before use. Checksums
// rather than per-block files with an atomic rename because rename without
// fsync does not order data before the name on every filesystem (ext4 with
// data=writeback, xfs), so only a checksum covers a power cut; and because
// one file per object version keeps the file count low and leaves the door
// open to FUSE passthrough of a fully cached object. meta.json, written
// once per object version, does use tmp+rename.
//
// # Limits
//
// MaxBytes (the sum of cached block lengths) and MinFreeBytes (free space
// on the cache's filesystem) are enforced before every block is written:
// least-recently-used blocks are evicted (record cleared, hole punched)
// until the new block fits. Blocks being read at that moment are never
// evicted. When not enough can be evicted the block is served from memory
// and not kept. Limits lowered between runs are applied at start.
//
// # Fetching
//
// Blocks are fetched by ranged reads of consecutive blocks (runs, in
// fetch.go): a random read's blocks in one request, a sequential reader's
// readahead up to Options.FetchMax (16 MiB) per request. Concurrent
// readers of one block share one fetch (a flight per block, fed by its
// run), which is cancelled when every reader waiting for it has gone (and
// no readahead or Warm wants it). The run copies each block's bytes to its
// waiting readers first and writes the block to disk after, so a reader
// never waits for the disk; readers that come during the write wait for
// it and read the block from disk. We do not use x/sync/singleflight: a
// flight must be joinable by readers with their own contexts, cancellable
// when they all leave, and must copy into each reader's buffer so that no
// reader holds a buffer while it waits for another block (which, with a
// shared memory budget, could deadlock). The memory of fetches (a block's
// buffer per run) is bounded for the whole cache by Options.MemoryBytes (a
// weighted semaphore that readahead only takes when free, and demand reads
// wait for). No lock is held across a store call; a read waits on its own
// context, and the fetch itself is bounded by the store's timeouts.
//
// # Passthrough
//
// A handle on an object whose every block is present and verified gives
// the kernel the data file itself (LocalFile, for FUSE passthrough), with
// all its blocks pinned until the handle closes: the kernel then reads the
// cached object as it reads a local file, without a round trip through
// this process.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/intakefs/intakefs/remote"
)

// Defaults for the zero fields of Options.
const (
	DefaultBlockSize    = 64 << 10
	DefaultMaxBytes     = 10 << 30
	DefaultMinFreeBytes = 1 << 30
	DefaultReadaheadMin = 1 << 20
	DefaultReadaheadMax = 64 << 20
	DefaultMemoryBytes  = 256 << 20
	DefaultFetchMax     = 16 << 20
)

// Options configure New.
type Options struct {
	// Dir is the cache directory (required); ResolveDir gives the CLI's
	// choice. The cache keeps its files under Dir/v1.
	Dir string
	// MaxBytes bounds the bytes of cached blocks (0: DefaultMaxBytes,
	// negative: no bound other than MinFreeBytes).
	MaxBytes int64
	// MinFreeBytes is the free space the cache leaves on its filesystem
	// (0: DefaultMinFreeBytes, negative: none).
	MinFreeBytes int64
	// BlockSize is the unit of fetching and caching (0: 64 KiB); a
	// multiple of 4096. A random read fetches the blocks it touches, so a
	// small block keeps what a Parquet reader fetches for one column close
	// to the column's bytes; sequential readers are served by requests of
	// up to FetchMax whatever the block size. Entries of another block size
	// found on disk are discarded.
	BlockSize int64
	// FetchMax bounds one ranged request of a sequential reader's
	// readahead (0: 16 MiB); rounded down to whole blocks, at least one.
	FetchMax int64
	// ReadaheadMin and ReadaheadMax bound a sequential reader's prefetch
	// window (0: 1 MiB and 64 MiB); rounded up to whole blocks. A negative
	// ReadaheadMax turns readahead off.
	ReadaheadMin, ReadaheadMax int64
	// MemoryBytes bounds the memory of blocks being fetched, for all
	// handles together (0: 256 MiB); at least two blocks.
	MemoryBytes int64
	// CacheLocal caches stores that can open objects in place
	// (remote.ReaderAtOpener, i.e. local files) too; by default Open hands
	// them to Direct.
	CacheLocal bool
	// Log receives warnings (entries discarded at start, write errors).
	Log *slog.Logger
}

// ErrClosed is a read through a Cache that was closed.
var ErrClosed = errors.New("cache closed")

// ErrLocked is returned by New when another process uses the directory.
var ErrLocked = errors.New("cache directory in use by another intakefs process")

var errLockHeld = errors.New("lock held")

// LockedError says which directory is locked and by whom.
type LockedError struct {
	Dir string
	PID int // 0 when unknown
}

func (e *LockedError) Error() string {
	s := e.Dir + ": " + ErrLocked.Error()
	if e.PID > 0 {
		s += " (pid " + strconv.Itoa(e.PID) + ")"
	}
	return s + "; give each mount its own --cache-dir"
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// ContextReaderAt is implemented by the handles Cache.Open returns: a
// ReadAt that gives up waiting when ctx is done (the handle's plain ReadAt
// uses a context that lives until Close). The engine should prefer it.
type ContextReaderAt interface {
	ReadAtContext(ctx context.Context, p []byte, off int64) (int, error)
}

// versionReader is remote.VersionReader, restated so that this package
// does not depend on its exact location: a ranged read that fails (with
// remote.ErrChanged) rather than return bytes of another version.
type versionReader interface {
	ReadVersion(ctx context.Context, info remote.ObjectInfo, off, length int64) (io.ReadCloser, error)
}

const (
	stWriting  = 1 // being written by its flight; not readable from disk
	stPresent  = 2 // on disk, readable
	stEvicting = 3 // being dropped; neither readable nor writable
)

// block is one non-absent block of an object. Guarded by Cache.mu.
type block struct {
	o          *object
	idx        int64
	n          int64
	state      uint8
	verified   atomic.Bool // read back and checked, or written, by this process
	pins       int32
	crc        uint32
	prev, next *block // LRU list, present blocks only
}

// object is one object version. Fields other than the file handles are
// guarded by Cache.mu.
type object struct {
	key     string
	info    remote.ObjectInfo
	ident   string
	dir     string
	nblocks int64
	blocks  map[int64]*block
	cached  int64 // bytes of present blocks
	users   int   // handles, flights, evictions and warms using it
	handles int
	doomed  bool // delete when unused (superseded or cleared)
	gone    bool // detached from the index
	dirty   bool // used since its last use was written to disk
	wrote   bool // blocks written by this process: fsynced at Close
	lastUse time.Time
	// failed holds blocks whose fetch just ran out its time bound: the
	// error, and until when it is the answer (see refusedLocked).
	failed map[int64]blockFailure

	onDisk atomic.Bool // its directory and meta.json exist
	fmu    sync.Mutex  // guards data and index, and the making of the directory
	data   *os.File
	index  *os.File
	fileID uint64 // identity (device, inode) of the data file last opened
}

type blockFailure struct {
	err   error
	until time.Time
}

// defaultFailedFor covers the kernel's retries of a failed read: it asks
// again at once, page by page, and would otherwise wait a whole time
// bound for each, so a reader got its EIO after several bounds.
const defaultFailedFor = 2 * time.Second

// refusedLocked is the error of a recent fetch that ran out its time
// bound for one of blocks first..last of o not on disk, or nil. Expired
// entries are dropped.
func (c *Cache) refusedLocked(o *object, first, last int64, now time.Time) error {
	if len(o.failed) == 0 {
		return nil
	}
	for i := first; i <= last; i++ {
		bf, ok := o.failed[i]
		if !ok {
			continue
		}
		if !now.Before(bf.until) {
			delete(o.failed, i)
			continue
		}
		if b := o.blocks[i]; b == nil || b.state != stPresent {
			return bf.err
		}
	}
	return nil
}

type flightKey struct {
	o   *object
	idx int64
}

// waiter is a reader waiting for a flight; the flight copies its bytes
// into dst and closes done.
type waiter struct {
	dst    []byte
	within int64
	err    error
	done   chan struct{}
}

// flight is one fetch of one block, fed by its run (fetch.go).
type flight struct {
	key  flightKey
	r    *run
	n    int64
	done chan struct{} // closed when finished (committed or failed)
	// guarded by Cache.mu
	waiters   []*waiter
	keep      int // prefetch and warm interest
	delivered bool
	cancelled bool
	err       error // valid after done
}

// Cache is a persistent block cache; see the comment at the top of this
// file. It implements Opener.
//
// Locks: Cache.mu guards the fields below it, every object's and block's
// fields (other than an object's files), flights and runs' counts; it is
// never held across a store call or file I/O (only a few statfs and
// unlinks of an empty object's bookkeeping, which take no disk time). An
// object's fmu guards its open files. A handle's mu guards its readahead
// state. Order: handle.mu, then object.fmu, then Cache.mu.
type Cache struct {
	opt   Options
	root  string
	bs    int64
	log   *slog.Logger
	lockf *os.File
	sem   *semaphore.Weighted
	bufs  sync.Pool
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	st    counters

	noReadahead bool
	runBlocks   int64 // blocks in one readahead request (Options.FetchMax)
	// failedFor is how long a block whose fetch ran out its time bound
	// is refused at once rather than fetched again (see refusedLocked).
	failedFor time.Duration
	// beside is what others keep in the cache directory under the same
	// MaxBytes (the engine's decompressed spools): see SetBeside.
	beside atomic.Int64

	mu       sync.Mutex
	closed   bool
	objects  map[string]*object
	byURL    map[string]map[*object]struct{}
	flights  map[flightKey]*flight
	lruHead  *block // most recently used
	lruTail  *block
	used     int64 // bytes of present and writing blocks
	handles  int
	trashSeq int64
	// free space estimate: statfs at freeAt, minus what was written since
	freeKnown int64
	freeDelta int64
	freeAt    time.Time
	freeOK    bool
}

var _ Opener = (*Cache)(nil)

// diskFree is statfsFree; a variable so that tests can fake a full disk.
var diskFree = statfsFree

// New opens (creating it if need be) the cache in o.Dir, takes its lock,
// and loads its index by scanning the directory. A directory another
// process holds gives a *LockedError (errors.Is ErrLocked): each daemon
// needs its own directory; `intakefs cache ls` can still read it (ListDir).
func New(o Options) (*Cache, error) {
	if o.Dir == "" {
		return nil, errors.New("cache: no directory")
	}
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.BlockSize < 4096 || o.BlockSize%4096 != 0 || o.BlockSize > 1<<30 {
		return nil, fmt.Errorf("cache: block size %d is not a multiple of 4096 between 4 KiB and 1 GiB", o.BlockSize)
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = DefaultMinFreeBytes
	}
	if o.ReadaheadMin <= 0 {
		o.ReadaheadMin = DefaultReadaheadMin
	}
	noReadahead := o.ReadaheadMax < 0
	if o.ReadaheadMax <= 0 {
		o.ReadaheadMax = DefaultReadaheadMax
	}
	o.ReadaheadMin = roundUp(o.ReadaheadMin, o.BlockSize)
	o.ReadaheadMax = roundUp(o.ReadaheadMax, o.BlockSize)
	if o.ReadaheadMax < o.ReadaheadMin {
		o.ReadaheadMax = o.ReadaheadMin
	}
	if o.MemoryBytes == 0 {
		o.MemoryBytes = DefaultMemoryBytes
	}
	if o.FetchMax <= 0 {
		o.FetchMax = DefaultFetchMax
	}
	o.FetchMax = max(o.FetchMax/o.BlockSize, 1) * o.BlockSize
	if o.MemoryBytes < 2*o.BlockSize {
		o.MemoryBytes = 2 * o.BlockSize
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	o.Dir = dir
	root := filepath.Join(dir, formatDir)
	for _, d := range []string{root, filepath.Join(root, "objects"), filepath.Join(root, "trash")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
	}
	lf, err := os.OpenFile(filepath.Join(root, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if err := lockFile(lf); err != nil {
		b := make([]byte, 32)
		n, _ := lf.ReadAt(b, 0)
		lf.Close()
		if errors.Is(err, errLockHeld) {
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:n])))
			return nil, &LockedError{Dir: dir, PID: pid}
		}
		return nil, fmt.Errorf("cache: lock %s: %w", dir, err)
	}
	lf.Truncate(0)
	lf.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)

	c := &Cache{opt: o, root: root, bs: o.BlockSize, log: o.Log, lockf: lf, noReadahead: noReadahead, runBlocks: o.FetchMax / o.BlockSize,
		sem: semaphore.NewWeighted(o.MemoryBytes), objects: map[string]*object{},
		byURL: map[string]map[*object]struct{}{}, flights: map[flightKey]*flight{}, failedFor: defaultFailedFor}
	c.ctx, c.stop = context.WithCancel(context.Background())
	bs := c.bs
	c.bufs.New = func() any { b := make([]byte, bs); return &b }
	if err := c.load(); err != nil {
		c.stop()
		lf.Close()
		return nil, err
	}
	return c, nil
}

// load empties the trash and builds the index from the objects on disk.
func (c *Cache) load() error {
	trash := filepath.Join(c.root, "trash")
	if ents, err := os.ReadDir(trash); err == nil {
		for _, e := range ents {
			os.RemoveAll(filepath.Join(trash, e.Name()))
		}
	}
	clean := takeClean(c.root)
	found, err := scanDir(c.root, c.bs, true, func(dir string, err error) {
		c.log.Warn("cache: discarding entry", "dir", dir, "err", err)
	})
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].lastUse.Before(found[j].lastUse) })
	for _, s := range found {
		if len(s.blocks) == 0 {
			os.RemoveAll(s.dir)
			continue
		}
		o := c.newObject(s.meta.info(), s.meta.Identity, s.key)
		o.onDisk.Store(true)
		trust := trusted(clean, s.key, s.dir)
		o.lastUse = s.lastUse
		idxs := make([]int64, 0, len(s.blocks))
		for i := range s.blocks {
			idxs = append(idxs, i)
		}
		sort.Slice(idxs, func(a, b int) bool { return idxs[a] > idxs[b] })
		for _, i := range idxs {
			b := &block{o: o, idx: i, n: blockLen(o.info.Size, c.bs, i), state: stPresent, crc: s.blocks[i]}
			b.verified.Store(trust)
			o.blocks[i] = b
			o.cached += b.n
			c.used += b.n
			c.lruPushFront(b)
		}
		c.objects[o.key] = o
		c.addURL(o)
	}
	// Limits lowered since the last run.
	c.refreshFree(true)
	c.mu.Lock()
	victims, _ := c.makeRoomLocked(0, true)
	c.mu.Unlock()
	c.dropBlocks(victims)
	return nil
}

func (c *Cache) newObject(info remote.ObjectInfo, ident, key string) *object {
	return &object{key: key, info: info, ident: ident, dir: objectDir(c.root, key),
		nblocks: (info.Size + c.bs - 1) / c.bs, blocks: map[int64]*block{}, lastUse: time.Now()}
}

func (c *Cache) addURL(o *object) {
	m := c.byURL[o.info.URL]
	if m == nil {
		m = map[*object]struct{}{}
		c.byURL[o.info.URL] = m
	}
	m[o] = struct{}{}
}

// Dir is the cache directory.
func (c *Cache) Dir() string { return c.opt.Dir }

// BlockSize is the cache's block size.
func (c *Cache) BlockSize() int64 { return c.bs }

// Close cancels fetches in flight, waits for them, writes last-use times
// and releases the directory. Handles still open fail with ErrClosed.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.stop()
	c.wg.Wait()
	c.mu.Lock()
	objs := make([]*object, 0, len(c.objects))
	for _, o := range c.objects {
		objs = append(objs, o)
	}
	c.mu.Unlock()
	now := time.Now()
	for _, o := range objs {
		o.fmu.Lock()
		c.mu.Lock()
		dirty := o.dirty
		o.dirty = false
		c.mu.Unlock()
		if dirty && o.onDisk.Load() {
			os.Chtimes(filepath.Join(o.dir, indexName), now, now)
		}
		if o.data != nil {
			o.data.Close()
			o.index.Close()
			o.data, o.index = nil, nil
		}
		o.fmu.Unlock()
	}
	c.writeClean(objs)
	return c.lockf.Close()
}

// Open implements Opener: a handle on obj's version, reading through the
// cache. Stores that open objects in place (local files) go to Direct
// unless Options.CacheLocal.
func (c *Cache) Open(ctx context.Context, s remote.Store, obj remote.ObjectInfo) (remote.ReaderAtCloser, error) {
	if _, ok := s.(remote.ReaderAtOpener); ok && !c.opt.CacheLocal {
		return Direct{}.Open(ctx, s, obj)
	}
	if obj.IsDir {
		return nil, fmt.Errorf("%s: is a directory", obj.URL)
	}
	if obj.Size < 0 {
		return nil, fmt.Errorf("%s: size unknown: the cache needs it", obj.URL)
	}
	o, err := c.acquireObject(obj, true)
	if err != nil {
		return nil, err
	}
	h := &handle{c: c, o: o, s: s}
	h.ctx, h.cancel = context.WithCancel(context.WithoutCancel(ctx))
	return h, nil
}

// acquireObject finds or makes the object for obj's version and takes a
// user reference on it; older versions of the URL are deleted, or doomed
// to be when unused.
func (c *Cache) acquireObject(obj remote.ObjectInfo, isHandle bool) (*object, error) {
	ident := obj.Identity()
	key := keyOf(obj.URL, ident, obj.Size)
	var trash []string
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	o := c.objects[key]
	if o == nil {
		o = c.newObject(obj, ident, key)
		c.objects[key] = o
		c.addURL(o)
	}
	o.doomed = false
	o.lastUse = time.Now()
	o.users++
	if isHandle {
		o.handles++
		c.handles++
	}
	o.dirty = true
	for o2 := range c.byURL[obj.URL] {
		if o2 == o {
			continue
		}
		if o2.users == 0 {
			if t := c.detachLocked(o2); t != "" {
				trash = append(trash, t)
			}
		} else {
			o2.doomed = true
		}
	}
	c.mu.Unlock()
	for _, t := range trash {
		os.RemoveAll(t)
	}
	return o, nil
}

// release drops a user reference; the last one closes the object's files,
// and deletes the object if it is doomed or holds nothing.
func (c *Cache) release(o *object) {
	c.mu.Lock()
	o.users--
	if o.users > 0 {
		c.mu.Unlock()
		return
	}
	var trash string
	closed := c.closed // after Close the directory is no longer ours to change
	if !closed && !o.gone && (o.doomed || len(o.blocks) == 0) {
		trash = c.detachLocked(o)
	}
	persist := o.dirty && !o.gone && !closed
	if persist {
		o.dirty = false
	}
	c.mu.Unlock()

	o.fmu.Lock()
	c.mu.Lock()
	unused := o.users == 0
	c.mu.Unlock()
	if unused {
		if persist && o.onDisk.Load() {
			now := time.Now()
			os.Chtimes(filepath.Join(o.dir, indexName), now, now)
		}
		if o.data != nil {
			o.data.Close()
			o.index.Close()
			o.data, o.index = nil, nil
		}
	}
	o.fmu.Unlock()
	if trash != "" {
		os.RemoveAll(trash)
	}
}

// detachLocked removes an unused object from the index and moves its
// directory to the trash; the caller deletes the returned path.
func (c *Cache) detachLocked(o *object) string {
	delete(c.objects, o.key)
	if m := c.byURL[o.info.URL]; m != nil {
		delete(m, o)
		if len(m) == 0 {
			delete(c.byURL, o.info.URL)
		}
	}
	for _, b := range o.blocks {
		if b.state == stPresent {
			c.lruRemove(b)
		}
		c.used -= b.n
	}
	o.blocks = map[int64]*block{}
	o.cached = 0
	o.gone = true
	if !o.onDisk.Load() {
		return ""
	}
	c.trashSeq++
	t := filepath.Join(c.root, "trash", o.key+"."+strconv.FormatInt(time.Now().UnixNano(), 36)+"."+strconv.FormatInt(c.trashSeq, 10))
	if err := os.Rename(o.dir, t); err != nil {
		return o.dir
	}
	return t
}

// files returns the object's open data and index files, creating the
// directory when create is set; (nil, nil, nil) when it has none.
func (c *Cache) files(o *object, create bool) (*os.File, *os.File, error) {
	o.fmu.Lock()
	defer o.fmu.Unlock()
	if o.data != nil {
		return o.data, o.index, nil
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, nil, ErrClosed
	}
	if !o.onDisk.Load() {
		if !create {
			return nil, nil, nil
		}
		if err := os.MkdirAll(o.dir, 0o700); err != nil {
			return nil, nil, err
		}
		m := &metaFile{Format: formatVer, URL: o.info.URL, Identity: o.ident, Size: o.info.Size,
			ETag: o.info.ETag, ModTime: o.info.ModTime, BlockSize: c.bs, Created: time.Now()}
		if err := writeMeta(o.dir, m); err != nil {
			return nil, nil, err
		}
		o.onDisk.Store(true)
	}
	// Blocks this process wrote or checked are trusted only while the data
	// file is the one it wrote them to: a file that is gone, shorter than
	// the object, or another file, gets every block checked again.
	recheck := false
	dataPath := filepath.Join(o.dir, dataName)
	data, err := os.OpenFile(dataPath, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		recheck = o.fileID != 0
		data, err = os.OpenFile(dataPath, os.O_RDWR|os.O_CREATE, 0o600)
	}
	if err != nil {
		return nil, nil, err
	}
	index, err := os.OpenFile(filepath.Join(o.dir, indexName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		data.Close()
		return nil, nil, err
	}
	if fi, err := data.Stat(); err == nil {
		if fi.Size() < o.info.Size {
			recheck = recheck || o.fileID != 0
			data.Truncate(o.info.Size)
		}
		id := fileID(fi)
		recheck = recheck || (o.fileID != 0 && id != o.fileID)
		o.fileID = id
	}
	if recheck {
		c.mu.Lock()
		for _, b := range o.blocks {
			b.verified.Store(false)
		}
		c.mu.Unlock()
		c.log.Warn("cache: a data file was changed behind the cache's back; checking its blocks again", "dir", o.dir)
	}
	o.data, o.index = data, index
	return data, index, nil
}

// LRU list of present blocks, guarded by c.mu.

func (c *Cache) lruPushFront(b *block) {
	b.prev, b.next = nil, c.lruHead
	if c.lruHead != nil {
		c.lruHead.prev = b
	}
	c.lruHead = b
	if c.lruTail == nil {
		c.lruTail = b
	}
}

func (c *Cache) lruRemove(b *block) {
	if b.prev != nil {
		b.prev.next = b.next
	} else if c.lruHead == b {
		c.lruHead = b.next
	}
	if b.next != nil {
		b.next.prev = b.prev
	} else if c.lruTail == b {
		c.lruTail = b.prev
	}
	b.prev, b.next = nil, nil
}

func (c *Cache) lruTouch(b *block) {
	if c.lruHead == b {
		return
	}
	c.lruRemove(b)
	c.lruPushFront(b)
}

// refreshFree updates the free-space estimate when it is stale (a second
// old, or 64 MiB written since). Called without c.mu.
func (c *Cache) refreshFree(force bool) {
	if c.opt.MinFreeBytes < 0 {
		return
	}
	c.mu.Lock()
	stale := force || !c.freeOK || time.Since(c.freeAt) > time.Second || c.freeDelta > 64<<20 || c.freeDelta < -64<<20
	c.mu.Unlock()
	if !stale {
		return
	}
	free, err := diskFree(c.root)
	c.mu.Lock()
	if err == nil {
		c.freeKnown, c.freeDelta, c.freeAt, c.freeOK = free, 0, time.Now(), true
	} else {
		c.freeOK = false
	}
	c.mu.Unlock()
}

// makeRoomLocked chooses the least recently used unpinned blocks to evict
// so that n more bytes fit under MaxBytes and above MinFreeBytes, and
// marks them evicting; the caller drops them (dropBlocks) after unlocking.
// It evicts nothing and reports false when not enough can be evicted,
// unless partial is set.
func (c *Cache) makeRoomLocked(n int64, partial bool) ([]*block, bool) {
	var need int64
	if c.opt.MaxBytes >= 0 {
		need = c.used + c.beside.Load() + n - c.opt.MaxBytes
	}
	if c.opt.MinFreeBytes >= 0 && c.freeOK {
		if f := c.opt.MinFreeBytes - (c.freeKnown - c.freeDelta - n); f > need {
			need = f
		}
	}
	if need <= 0 {
		return nil, true
	}
	var got int64
	var cand []*block
	for b := c.lruTail; b != nil && got < need; b = b.prev {
		if b.pins > 0 {
			continue
		}
		cand = append(cand, b)
		got += b.n
	}
	if got < need && !partial {
		return nil, false
	}
	for _, b := range cand {
		c.evictLocked(b)
		c.freeDelta -= b.n
		c.st.evictions.Add(1)
		c.st.evictedBytes.Add(b.n)
	}
	return cand, got >= need
}

// evictLocked takes a present or writing block out of use; dropBlocks
// finishes the job.
func (c *Cache) evictLocked(b *block) {
	if b.state == stPresent {
		c.lruRemove(b)
		b.o.cached -= b.n
	}
	c.used -= b.n
	b.state = stEvicting
	b.o.users++
}

// dropBlocks clears the records and frees the space of evicting blocks.
func (c *Cache) dropBlocks(bs []*block) {
	for _, b := range bs {
		o := b.o
		if data, index, err := c.files(o, false); err == nil && data != nil {
			clearRecord(index, b.idx)
			punchHole(data, b.idx*c.bs, b.n)
		}
		c.mu.Lock()
		if o.blocks[b.idx] == b {
			delete(o.blocks, b.idx)
		}
		c.mu.Unlock()
		c.release(o)
	}
}

// handle is an open object version.
type handle struct {
	c      *Cache
	o      *object
	s      remote.Store
	ctx    context.Context
	cancel context.CancelFunc
	closed atomic.Bool

	mu sync.Mutex // guards ra, pf, pt and ptBlocks
	ra readahead
	pf []*flight // prefetches this handle keeps alive
	// pt is the data file handed out for passthrough (LocalFile), and
	// ptBlocks the blocks pinned for it: the kernel reads them without us.
	pt       *os.File
	ptBlocks []*block
}

// LocalFiler is implemented by the handles Cache.Open returns: a local
// file holding exactly the object's bytes, for FUSE passthrough, or nil.
type LocalFiler interface {
	LocalFile() *os.File
}

var _ LocalFiler = (*handle)(nil)

// LocalFile implements LocalFiler: when every block of the object is
// present and verified, the object's data file (opened read-only), with
// every block pinned until Close so that nothing evicts or punches it
// while the kernel reads it; nil otherwise (the handle then reads through
// the cache as usual, and a later open may find the object complete).
func (h *handle) LocalFile() *os.File {
	c, o := h.c, h.o
	if h.closed.Load() || o.info.Size == 0 {
		return nil
	}
	h.mu.Lock()
	f := h.pt
	h.mu.Unlock()
	if f != nil {
		return f
	}
	c.mu.Lock()
	full := o.cached == o.info.Size && !o.doomed && !o.gone
	c.mu.Unlock()
	if !full {
		return nil
	}
	// Opens the cache's own descriptors and learns the file's identity;
	// a replaced file loses its blocks' verification here.
	if data, _, err := c.files(o, false); err != nil || data == nil {
		return nil
	}
	pinned := make([]*block, 0, o.nblocks)
	unpin := func() {
		c.mu.Lock()
		for _, b := range pinned {
			b.pins--
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	for i := int64(0); i < o.nblocks; i++ {
		b := o.blocks[i]
		if b == nil || b.state != stPresent || !b.verified.Load() {
			c.mu.Unlock()
			unpin()
			return nil
		}
		b.pins++
		c.lruTouch(b)
		pinned = append(pinned, b)
	}
	o.lastUse = time.Now()
	o.dirty = true
	c.mu.Unlock()
	f, err := os.Open(filepath.Join(o.dir, dataName))
	if err == nil {
		fi, serr := f.Stat()
		o.fmu.Lock()
		same := serr == nil && fileID(fi) == o.fileID && fi.Size() >= o.info.Size
		o.fmu.Unlock()
		if !same {
			f.Close()
			err = errors.New("data file replaced")
		}
	}
	if err != nil {
		unpin()
		return nil
	}
	h.mu.Lock()
	if h.pt != nil || h.closed.Load() {
		// Another call won, or Close came first.
		h.mu.Unlock()
		f.Close()
		unpin()
		return nil
	}
	h.pt, h.ptBlocks = f, pinned
	h.mu.Unlock()
	c.st.passthroughOpens.Add(1)
	return f
}

var _ ContextReaderAt = (*handle)(nil)

// part is the piece of one block a read needs.
type part struct {
	idx    int64
	dst    []byte
	at     int64 // dst's offset in the read's buffer
	within int64
	b      *block  // pinned present block, or
	f      *flight // a flight and our waiter on it (w nil: a late joiner)
	w      *waiter
}

// ReadAt implements io.ReaderAt.
func (h *handle) ReadAt(p []byte, off int64) (int, error) { return h.ReadAtContext(h.ctx, p, off) }

// ReadAtContext implements ContextReaderAt.
func (h *handle) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if h.closed.Load() {
		return 0, ErrClosed
	}
	c, o := h.c, h.o
	size := o.info.Size
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", o.info.URL, off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= size {
		return 0, io.EOF
	}
	want := int64(len(p))
	if off+want > size {
		want = size - off
	}
	c.st.reads.Add(1)
	bs := c.bs
	first, last := off/bs, (off+want-1)/bs
	parts := make([]part, 0, last-first+1)
	var created []*flight // in block order: one run per stretch of them
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, ErrClosed
	}
	if err := c.refusedLocked(o, first, last, time.Now()); err != nil {
		c.mu.Unlock()
		return 0, err
	}
	for i := first; i <= last; i++ {
		lo, hi := max(off, i*bs), min(off+want, (i+1)*bs)
		pt := part{idx: i, dst: p[lo-off : hi-off], at: lo - off, within: lo - i*bs}
		if b := o.blocks[i]; b != nil && b.state == stPresent {
			b.pins++
			c.lruTouch(b)
			pt.b = b
		} else {
			pt.w = &waiter{dst: pt.dst, within: pt.within, done: make(chan struct{})}
			f := c.flights[flightKey{o, i}]
			if f == nil {
				f = c.newFlightLocked(o, i)
				created = append(created, f)
			}
			pt.f = f
			if f.delivered {
				pt.w = nil // late: wait for the flight to end, then look again
			} else {
				f.waiters = append(f.waiters, pt.w)
			}
		}
		parts = append(parts, pt)
	}
	runs := c.startRunsLocked(h.s, o, created, false)
	o.dirty = true
	o.lastUse = time.Now()
	c.mu.Unlock()
	for _, r := range runs {
		go c.run(r)
	}
	h.readahead(off, want)

	var n int64
	var err error
	for k := 0; k < len(parts); k++ {
		pt := &parts[k]
		if pt.b != nil {
			// Consecutive blocks already checked: one pread for all.
			if j := h.readSpan(p, parts[k:]); j > 0 {
				for _, q := range parts[k : k+j] {
					n += int64(len(q.dst))
				}
				k += j - 1
				continue
			}
			err = h.readDisk(ctx, pt)
		} else if pt.w == nil {
			err = h.waitDone(ctx, pt.f)
			if err == nil {
				err = h.fetchPart(ctx, pt)
			}
		} else {
			err = h.wait(ctx, pt.f, pt.w)
			if err == nil {
				c.st.missBlocks.Add(1)
				c.st.missBytes.Add(int64(len(pt.dst)))
			}
		}
		if err != nil {
			for j := k + 1; j < len(parts); j++ {
				h.abandon(&parts[j])
			}
			break
		}
		n += int64(len(pt.dst))
	}
	c.st.readBytes.Add(n)
	if err == nil && n < int64(len(p)) {
		err = io.EOF
	}
	return int(n), err
}

// readSpan serves, with one read of the data file, the longest run of
// parts at the start of ps whose blocks are pinned, present and verified,
// when there are at least two; it unpins them and returns how many it
// served (0: none, the caller reads them one by one).
func (h *handle) readSpan(p []byte, ps []part) int {
	c := h.c
	j := 0
	for j < len(ps) && ps[j].b != nil && ps[j].b.verified.Load() {
		j++
	}
	if j < 2 {
		return 0
	}
	data, _, err := c.files(h.o, false)
	if err != nil || data == nil {
		return 0
	}
	// files() clears verified when the data file was replaced: look again.
	for k := range ps[:j] {
		if !ps[k].b.verified.Load() {
			return 0
		}
	}
	// The parts' buffers are consecutive pieces of p.
	first, last := ps[0], ps[j-1]
	dst := p[first.at : last.at+int64(len(last.dst))]
	total := len(dst)
	if m, rerr := data.ReadAt(dst, first.b.idx*c.bs+first.within); rerr != nil || m != total {
		return 0
	}
	c.mu.Lock()
	for _, q := range ps[:j] {
		q.b.pins--
	}
	c.mu.Unlock()
	c.st.hitBlocks.Add(int64(j))
	c.st.hitBytes.Add(int64(total))
	return j
}

// readDisk serves a part from a pinned present block, and unpins it. A
// block that fails its check is dropped and fetched again.
func (h *handle) readDisk(ctx context.Context, pt *part) error {
	c, b := h.c, pt.b
	ok := false
	data, _, err := c.files(h.o, false)
	if err != nil {
		// Closed, or the files cannot be opened (out of descriptors?):
		// not the block's fault, so it stays; the bytes come from the store.
		c.mu.Lock()
		b.pins--
		c.mu.Unlock()
		if errors.Is(err, ErrClosed) {
			return err
		}
		return h.fetchPart(ctx, pt)
	}
	if data != nil {
		// (verified is read after files(): opening a replaced file clears it.)
		if b.verified.Load() {
			m, rerr := data.ReadAt(pt.dst, b.idx*c.bs+pt.within)
			ok = rerr == nil && m == len(pt.dst)
		} else {
			bp := c.bufs.Get().(*[]byte)
			buf := (*bp)[:b.n]
			m, rerr := data.ReadAt(buf, b.idx*c.bs)
			if rerr == nil && int64(m) == b.n && checksum(buf) == b.crc {
				copy(pt.dst, buf[pt.within:])
				ok = true
			}
			c.bufs.Put(bp)
		}
	}
	var bad []*block
	c.mu.Lock()
	b.pins--
	if ok {
		b.verified.Store(true)
	} else if b.state == stPresent && h.o.blocks[b.idx] == b {
		c.evictLocked(b)
		bad = append(bad, b)
	}
	c.mu.Unlock()
	if ok {
		c.st.hitBlocks.Add(1)
		c.st.hitBytes.Add(int64(len(pt.dst)))
		return nil
	}
	if len(bad) > 0 {
		c.st.corruptBlocks.Add(1)
		c.log.Warn("cache: block failed its check; fetching it again", "url", h.o.info.URL, "block", b.idx, "dir", h.o.dir)
		c.dropBlocks(bad)
	}
	return h.fetchPart(ctx, pt)
}

// fetchPart serves a part from the store, joining a fetch of its block
// already in flight.
func (h *handle) fetchPart(ctx context.Context, pt *part) error {
	c := h.c
	for {
		w := &waiter{dst: pt.dst, within: pt.within, done: make(chan struct{})}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return ErrClosed
		}
		if b := h.o.blocks[pt.idx]; b != nil && b.state == stPresent {
			// Stored since we looked.
			b.pins++
			c.lruTouch(b)
			c.mu.Unlock()
			pt.b = b
			return h.readDisk(ctx, pt)
		}
		f, r, late := c.joinLocked(h.s, h.o, pt.idx, w, false)
		c.mu.Unlock()
		if r != nil {
			go c.run(r)
		}
		if late {
			if err := h.waitDone(ctx, f); err != nil {
				return err
			}
			continue
		}
		if err := h.wait(ctx, f, w); err != nil {
			return err
		}
		c.st.missBlocks.Add(1)
		c.st.missBytes.Add(int64(len(pt.dst)))
		return nil
	}
}

// waitDone waits for a flight to end, or for ctx.
func (h *handle) waitDone(ctx context.Context, f *flight) error {
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait waits for a flight to deliver to w, or for ctx.
func (h *handle) wait(ctx context.Context, f *flight, w *waiter) error {
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
	}
	if h.unwait(f, w) {
		return ctx.Err()
	}
	return w.err
}

// unwait takes w off f's list, or, when f is already delivering, waits
// for its copy to end (a memcpy); reports whether w was taken off.
func (h *handle) unwait(f *flight, w *waiter) bool {
	c := h.c
	c.mu.Lock()
	if !f.delivered {
		for i, x := range f.waiters {
			if x == w {
				f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
				break
			}
		}
		c.maybeCancelLocked(f)
		c.mu.Unlock()
		return true
	}
	c.mu.Unlock()
	<-w.done
	return false
}

// abandon releases a part a failed read will not use.
func (h *handle) abandon(pt *part) {
	c := h.c
	if pt.b != nil {
		c.mu.Lock()
		pt.b.pins--
		c.mu.Unlock()
		return
	}
	if pt.w != nil {
		h.unwait(pt.f, pt.w)
	}
}

// readahead feeds the read to the handle's stream detector and starts the
// prefetches it asks for, as far as the memory budget allows.
func (h *handle) readahead(off, n int64) {
	c := h.c
	if c.noReadahead {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	from, to, s := h.ra.observe(off, n, h.o.info.Size, c.bs, c.opt.ReadaheadMin, c.opt.ReadaheadMax)
	if from >= to {
		return
	}
	var runs []*run
	issuedTo := to
	c.mu.Lock()
	if c.closed || h.closed.Load() || h.o.doomed {
		c.mu.Unlock()
		return
	}
	// Forget prefetches that are done.
	live := h.pf[:0]
	for _, f := range h.pf {
		if !f.delivered {
			live = append(live, f)
		}
	}
	clear(h.pf[len(live):])
	h.pf = live
	absent := func(i int64) bool { return h.o.blocks[i] == nil && c.flights[flightKey{h.o, i}] == nil }
	end := (to + c.bs - 1) / c.bs
	for i := from / c.bs; i < end; {
		if !absent(i) {
			i++
			continue
		}
		// One request for the stretch of absent blocks from i.
		j := i + 1
		for j < end && j-i < c.runBlocks && absent(j) {
			j++
		}
		bn := blockLen(h.o.info.Size, c.bs, i)
		if !c.sem.TryAcquire(bn) {
			c.st.prefetchSkipped.Add(1)
			issuedTo = i * c.bs
			break
		}
		fl := make([]*flight, 0, j-i)
		for k := i; k < j; k++ {
			f := c.newFlightLocked(h.o, k)
			f.keep = 1
			fl = append(fl, f)
		}
		h.pf = append(h.pf, fl...)
		r := c.newRunLocked(h.s, h.o, fl, true)
		r.budget = bn
		runs = append(runs, r)
		i = j
	}
	c.mu.Unlock()
	if issuedTo < s.raEnd {
		s.raEnd = issuedTo
	}
	for _, r := range runs {
		go c.run(r)
	}
}

// Close implements io.Closer: it cancels the handle's prefetches no one
// else waits for and releases the object.
func (h *handle) Close() error {
	if !h.closed.CompareAndSwap(false, true) {
		return nil
	}
	h.cancel()
	c := h.c
	h.mu.Lock()
	pf := h.pf
	h.pf = nil
	pt, ptBlocks := h.pt, h.ptBlocks
	h.pt, h.ptBlocks = nil, nil
	h.mu.Unlock()
	if pt != nil {
		pt.Close()
	}
	c.mu.Lock()
	for _, b := range ptBlocks {
		b.pins--
	}
	for _, f := range pf {
		f.keep--
		c.maybeCancelLocked(f)
	}
	h.o.handles--
	c.handles--
	h.o.dirty = true
	c.mu.Unlock()
	c.release(h.o)
	return nil
}

// SetBeside tells the cache how many bytes other users of its directory
// keep under the same MaxBytes (the engine's decompressed spools), so
// that blocks leave room for them; it may change at any time.
func (c *Cache) SetBeside(n int64) { c.beside.Store(n) }

// Release evicts least recently used blocks that no reader holds until
// the blocks and n bytes beside them fit under MaxBytes (or no more can
// go), for data kept beside them (n replaces what SetBeside said, for
// this call); it returns the bytes freed.
func (c *Cache) Release(n int64) int64 {
	c.mu.Lock()
	if c.closed || c.opt.MaxBytes < 0 {
		c.mu.Unlock()
		return 0
	}
	var victims []*block
	need := c.used + n - c.opt.MaxBytes
	for b := c.lruTail; b != nil && need > 0; b = b.prev {
		if b.pins > 0 {
			continue
		}
		victims = append(victims, b)
		need -= b.n
	}
	for _, b := range victims {
		c.evictLocked(b)
		c.freeDelta -= b.n
		c.st.evictions.Add(1)
		c.st.evictedBytes.Add(b.n)
	}
	c.mu.Unlock()
	c.dropBlocks(victims)
	var freed int64
	for _, b := range victims {
		freed += b.n
	}
	return freed
}
