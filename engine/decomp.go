package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/intakefs/intakefs/cache"
	"github.com/intakefs/intakefs/cache/decomp"
	"github.com/intakefs/intakefs/remote"
)

// Item is one piece of a source's data as a reader sees it: an object as
// it is, an object decompressed, or one member of an archive.
type Item struct {
	// Name is the piece's name in a directory of parts.
	Name string
	// Obj is the object the bytes come from.
	Obj *remote.ObjectInfo
	// Format is the object's format.
	Format decomp.Format
	// Member is the archive member, nil for the whole object.
	Member *decomp.Member
	// Base is where the member's bytes start in the stream the item
	// reads (the object, or its decompression).
	Base int64
	// Size is the item's size when known at planning, else -1 (see
	// spools.size for what was learned since).
	Size int64
	// Key names the decompressed stream the item reads from (a spool);
	// "" reads the object's bytes as they are.
	Key string
}

// raw reports whether the item is exactly its object's bytes.
func (it *Item) raw() bool { return it.Key == "" && it.Member == nil }

// spools keeps the decompressed streams of an FS on local disk: one
// decomp.Spool per stream, shared by every open file that reads it, kept
// complete across remounts, and evicted (least recently used first, never
// while in use) to stay under the cache's size limit.
type spools struct {
	dir string
	// limit is the most the spools may hold, given what the block cache
	// holds now (it shares the cache's --cache-max-size).
	limit func() int64
	log   *slog.Logger
	set   decomp.SpoolSet
	// opened counts decompressions started (tests check that a re-read
	// of a complete spool decompresses nothing).
	opened atomic.Int64

	mu sync.Mutex // guards files, total, memo; never held across I/O
	// files are the complete spools on disk, by file name.
	files map[string]*spoolFile
	total int64
	// memo remembers per object version what planning found out (format,
	// size, members), so that a plan made every second costs no reads.
	memo map[string]any
}

type spoolFile struct {
	size    int64
	lastUse time.Time
	refs    int
}

// newSpools opens the spool directory and indexes the complete spools
// in it, removing partial ones a dead daemon left.
func newSpools(dir string, limit func() int64, log *slog.Logger) (*spools, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool directory %s: %w", dir, err)
	}
	if err := decomp.CleanDir(dir); err != nil {
		log.Warn("cleaning the spool directory", "dir", dir, "err", err.Error())
	}
	s := &spools{dir: dir, limit: limit, log: log, files: map[string]*spoolFile{}, memo: map[string]any{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if filepath.Ext(e.Name()) != ".spool" {
			continue
		}
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		s.files[e.Name()] = &spoolFile{size: fi.Size(), lastUse: fi.ModTime()}
		s.total += fi.Size()
	}
	s.evict()
	return s, nil
}

// defaultSpoolDir is where an FS without a block cache (the CLI's ls and
// cat) spools: one directory per user under the system's temporary one.
func defaultSpoolDir() string {
	return filepath.Join(os.TempDir(), "intakefs-"+strconv.Itoa(os.Getuid()), "spool")
}

var externalOnce sync.Once

// useExternalDecoders decodes xz and zstd with the xz and zstd programs
// when they are installed: xz is about twice as fast as the Go decoder
// (and multi-threaded), and a child zstd decodes on a core of its own
// while this process spools and serves reads. INTAKEFS_DECODERS=go keeps
// both in Go.
func useExternalDecoders() {
	externalOnce.Do(func() {
		if os.Getenv("INTAKEFS_DECODERS") == "go" {
			return
		}
		if p, err := exec.LookPath("xz"); err == nil {
			decomp.ExternalXZ = p
		}
		if p, err := exec.LookPath("zstd"); err == nil {
			decomp.ExternalZstd = p
		}
	})
}

// spoolLimit shares the block cache's size limit: the spools get what the
// cached blocks leave.
func spoolLimit(o cache.Opener) func() int64 {
	if c, ok := o.(*cache.Cache); ok {
		return func() int64 {
			st := c.Stats()
			if st.MaxBytes < 0 {
				return 1 << 62
			}
			return max(st.MaxBytes-st.CachedBytes, 0)
		}
	}
	return func() int64 { return 1 << 30 }
}

func (s *spools) remember(key string, v any) {
	s.mu.Lock()
	if len(s.memo) > 10000 {
		s.memo = map[string]any{}
	}
	s.memo[key] = v
	s.mu.Unlock()
}

func (s *spools) recall(key string) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.memo[key]
	return v, ok
}

// size is a stream's decompressed size if it is known: from its complete
// spool, or from a size remembered.
func (s *spools) size(key string) (int64, bool) {
	name := decomp.SpoolName(key)
	s.mu.Lock()
	if f := s.files[name]; f != nil && f.size >= 0 {
		s.mu.Unlock()
		return f.size, true
	}
	v, ok := s.memo["size\x00"+key]
	s.mu.Unlock()
	if ok {
		return v.(int64), true
	}
	return 0, false
}

// acquire gives the shared spool of an item's stream; release it.
func (s *spools) acquire(item *Item, open func(ctx context.Context) (io.ReadCloser, error), expected int64) (*decomp.Spool, error) {
	key := item.Key
	name := decomp.SpoolName(key)
	sp, err := s.set.Acquire(decomp.SpoolConfig{
		Dir:          s.dir,
		Key:          key,
		ExpectedSize: expected,
		Open: func(ctx context.Context) (io.ReadCloser, error) {
			s.opened.Add(1)
			return open(ctx)
		},
		OnSize: func(size int64) { s.completed(key, name, size) },
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	f := s.files[name]
	if f == nil {
		// in progress (not counted until complete), or complete already
		if n, ok := sp.Size(); ok {
			f = &spoolFile{size: n}
			s.files[name] = f
			s.total += n
		} else {
			f = &spoolFile{size: -1}
			s.files[name] = f
		}
	}
	f.refs++
	f.lastUse = time.Now()
	s.mu.Unlock()
	return sp, nil
}

// completed records a finished decompression and makes room for it.
func (s *spools) completed(key, name string, size int64) {
	s.mu.Lock()
	if len(s.memo) > 10000 {
		s.memo = map[string]any{}
	}
	s.memo["size\x00"+key] = size
	if f := s.files[name]; f != nil && f.size < 0 {
		f.size = size
		s.total += size
	}
	s.mu.Unlock()
	s.evict()
}

func (s *spools) release(sp *decomp.Spool, key string) {
	name := decomp.SpoolName(key)
	perr := sp.PersistErr()
	if err := s.set.Release(sp); err != nil {
		s.log.Warn("closing a spool", "err", err.Error())
	}
	s.mu.Lock()
	if f := s.files[name]; f != nil {
		f.refs--
		f.lastUse = time.Now()
		if f.refs <= 0 && (f.size < 0 || perr != nil) {
			// never completed (the partial file is gone with it), or
			// could not be kept
			if f.size > 0 {
				s.total -= f.size
			}
			delete(s.files, name)
		}
	}
	s.mu.Unlock()
	s.evict()
}

// evict removes least recently used complete spools that nobody reads
// until the rest fit the limit.
func (s *spools) evict() {
	limit := s.limit()
	s.mu.Lock()
	var victims []string
	if s.total > limit {
		type cand struct {
			name string
			f    *spoolFile
		}
		var cs []cand
		for n, f := range s.files {
			if f.refs == 0 && f.size >= 0 {
				cs = append(cs, cand{n, f})
			}
		}
		sort.Slice(cs, func(i, j int) bool { return cs[i].f.lastUse.Before(cs[j].f.lastUse) })
		for _, c := range cs {
			if s.total <= limit {
				break
			}
			s.total -= c.f.size
			delete(s.files, c.name)
			victims = append(victims, c.name)
		}
	}
	s.mu.Unlock()
	for _, n := range victims {
		if err := os.Remove(filepath.Join(s.dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("evicting a spool", "file", n, "err", err.Error())
		}
	}
}

// Total is the bytes of complete spools kept (for tests and stats).
func (s *spools) Total() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// spoolKey names the decompressed stream of an object version, or of one
// zip member of it.
func spoolKey(obj *remote.ObjectInfo, f decomp.Format, member string) string {
	k := obj.URL + "\x00" + obj.Identity() + "\x00" + strconv.FormatInt(obj.Size, 10) + "\x00" + f.Compression.String()
	if member != "" {
		k += "\x00zip-member\x00" + member
	}
	return k
}

// multiCloser closes a decompressor and the object under it.
type multiCloser struct {
	io.Reader
	closers []io.Closer
}

func (m *multiCloser) Close() error {
	var first error
	for _, c := range m.closers {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ctxReaderAt reads an opened object with the context of the reader.
type ctxReaderAt struct {
	ctx context.Context
	r   remote.ReaderAtCloser
}

func (c ctxReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if cr, ok := c.r.(cache.ContextReaderAt); ok {
		return cr.ReadAtContext(c.ctx, p, off)
	}
	return c.r.ReadAt(p, off)
}

// streamOpener starts an item's decompressed stream from its beginning:
// what its spool decompresses.
func (f *FS) streamOpener(store remote.Store, it *Item) func(ctx context.Context) (io.ReadCloser, error) {
	obj := *it.Obj
	format := it.Format
	member := it.Member
	return func(ctx context.Context) (io.ReadCloser, error) {
		r, err := f.Opener.Open(ctx, store, obj)
		if err != nil {
			return nil, err
		}
		ra := ctxReaderAt{ctx, r}
		if format.Archive == decomp.Zip && member != nil {
			z, err := decomp.OpenZip(ra, obj.Size)
			if err != nil {
				r.Close()
				return nil, err
			}
			rc, err := z.Open(*member)
			if err != nil {
				r.Close()
				return nil, err
			}
			return &multiCloser{Reader: rc, closers: []io.Closer{rc, r}}, nil
		}
		d := decomp.NewReader(format.Compression, io.NewSectionReader(ra, 0, obj.Size))
		return &multiCloser{Reader: d, closers: []io.Closer{d, r}}, nil
	}
}

// detect is an object's format, from its name, its first bytes and the
// source's compression argument; remembered per object version.
func (f *FS) detect(ctx context.Context, store remote.Store, obj *remote.ObjectInfo, arg string) (decomp.Format, error) {
	mk := "format\x00" + obj.URL + "\x00" + obj.Identity() + "\x00" + arg
	if v, ok := f.spools.recall(mk); ok {
		return v.(decomp.Format), nil
	}
	var head []byte
	if obj.Size != 0 {
		n := int64(512)
		if obj.Size > 0 && obj.Size < n {
			n = obj.Size
		}
		var err error
		head, err = readSmall(ctx, store, obj.URL, 0, n)
		if err != nil {
			return decomp.Format{}, err
		}
	}
	fm, err := decomp.Detect(obj.URL, head, arg)
	if err != nil {
		return decomp.Format{}, fmt.Errorf("%s: %w", obj.URL, err)
	}
	f.spools.remember(mk, fm)
	return fm, nil
}

// knownSize is an item's decompressed size when it can be had without
// decompressing it (decomp.KnownSize), or from a complete spool.
func (f *FS) knownSize(ctx context.Context, store remote.Store, it *Item) (int64, error) {
	if it.Key == "" || it.Member != nil {
		return it.Size, nil
	}
	if n, ok := f.spools.size(it.Key); ok {
		return n, nil
	}
	if it.Size >= 0 {
		return it.Size, nil
	}
	mk := "known\x00" + it.Key
	if v, ok := f.spools.recall(mk); ok {
		return v.(int64), nil
	}
	r, err := f.Opener.Open(ctx, store, *it.Obj)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	n, ok, err := decomp.KnownSize(ctx, decomp.Format{Compression: it.Format.Compression}, ctxReaderAt{ctx, r}, it.Obj.Size)
	if errors.Is(err, decomp.ErrCorrupt) {
		// the reads find the damage, after the bytes before it
		f.Log.Warn("compressed data damaged: its size is not known", "source", remote.RedactURL(it.Obj.URL), "err", err.Error())
		ok, err = false, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", it.Obj.URL, err)
	}
	if !ok {
		n = -1
	}
	f.spools.remember(mk, n)
	return n, nil
}

// archiveMembers lists the regular members of an archive object, with
// where their bytes are; a compressed tar is decompressed once (into its
// spool) to be listed.
func (f *FS) archiveMembers(ctx context.Context, store remote.Store, obj *remote.ObjectInfo, fm decomp.Format) ([]Item, error) {
	mk := "members\x00" + obj.URL + "\x00" + obj.Identity() + "\x00" + fm.String()
	if v, ok := f.spools.recall(mk); ok {
		return v.([]Item), nil
	}
	r, err := f.Opener.Open(ctx, store, *obj)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var items []Item
	add := func(m decomp.Member, it Item) {
		if m.Type != decomp.Regular {
			return
		}
		name, ok := decomp.CleanName(m.Name)
		if !ok {
			f.Log.Warn("archive member with an unsafe name left out", "archive", remote.RedactURL(obj.URL), "member", m.Name)
			return
		}
		mm := m
		it.Name, it.Obj, it.Format, it.Member = name, obj, fm, &mm
		items = append(items, it)
	}
	switch fm.Archive {
	case decomp.Zip:
		z, err := decomp.OpenZip(ctxReaderAt{ctx, r}, obj.Size)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", obj.URL, err)
		}
		for i, m := range z.Members() {
			it := Item{Size: m.Size, Base: -1}
			if sr, ok, err := z.ReaderAt(m); err == nil && ok {
				// stored: read in place, no spool
				_, it.Base, _ = sr.Outer()
			} else {
				// two members may share a name: the index tells them apart
				it.Key = spoolKey(obj, fm, fmt.Sprintf("%d:%s", i, m.Name))
			}
			add(m, it)
		}
	case decomp.Tar:
		var ra io.ReaderAt = ctxReaderAt{ctx, r}
		size := obj.Size
		key := ""
		if fm.Compression != decomp.None {
			key = spoolKey(obj, fm, "")
			it := &Item{Obj: obj, Format: fm, Key: key, Size: -1}
			sp, err := f.spools.acquire(it, f.streamOpener(store, it), -1)
			if err != nil {
				return nil, err
			}
			defer f.spools.release(sp, key)
			ra, size = sp, -1
		}
		t, err := decomp.ScanTar(ctx, ra, size)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", obj.URL, err)
		}
		for _, m := range t.Members() {
			if m.Type == decomp.Regular && m.Offset < 0 {
				return nil, fmt.Errorf("%s: member %q is a sparse file: %w", obj.URL, m.Name, decomp.ErrUnsupported)
			}
			add(m, Item{Size: m.Size, Base: m.Offset, Key: key})
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	f.spools.remember(mk, items)
	return items, nil
}

// itemReader reads one item of an open file.
type itemReader struct {
	it    *Item
	raw   remote.ReaderAtCloser // the object, for items read in place
	spool *decomp.Spool
	fs    *FS
}

// openItem opens an item for reading: the object itself, or the shared
// spool of its decompressed stream.
func (f *FS) openItem(ctx context.Context, store remote.Store, it *Item) (*itemReader, error) {
	if it.Key == "" {
		r, err := f.Opener.Open(ctx, store, *it.Obj)
		if err != nil {
			return nil, err
		}
		return &itemReader{it: it, raw: r, fs: f}, nil
	}
	expected := int64(-1)
	if it.Member != nil && it.Format.Archive == decomp.Zip {
		expected = it.Member.Size
	} else if it.Member == nil && it.Size >= 0 {
		expected = it.Size
	}
	sp, err := f.spools.acquire(it, f.streamOpener(store, it), expected)
	if err != nil {
		return nil, err
	}
	return &itemReader{it: it, spool: sp, fs: f}, nil
}

// ReadAt reads the item's bytes at off. An item of unknown size ends with
// io.EOF where its stream does.
func (r *itemReader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	base, size := int64(0), int64(-1)
	if r.it.Member != nil {
		size = r.it.Member.Size
		if r.it.Base >= 0 {
			base = r.it.Base
		}
	}
	if r.spool != nil && r.it.Member == nil {
		size, _ = r.spool.Size()
		if r.it.Size >= 0 {
			size = r.it.Size
		}
	}
	if size >= 0 {
		if off >= size {
			return 0, r.verified(ctx, io.EOF)
		}
		if rem := size - off; int64(len(p)) >= rem {
			n, err := r.readAt(ctx, p[:rem], base+off)
			if err == nil || errors.Is(err, io.EOF) && int64(n) == rem {
				err = r.verified(ctx, nil)
				if err == nil && int64(len(p)) > rem {
					err = io.EOF
				}
			}
			return n, err
		}
	}
	return r.readAt(ctx, p, base+off)
}

// verified waits, at the end of an item read from a spool, for its
// stream to end: the checksums that cover the whole stream (a zip
// member's CRC-32, an xz or zstd stream's) are checked only there, and
// damage they find must fail the read rather than pass unnoticed.
func (r *itemReader) verified(ctx context.Context, ok error) error {
	if r.spool == nil || r.it.Member != nil && r.it.Format.Archive != decomp.Zip {
		return ok
	}
	if _, err := r.spool.Fill(ctx); err != nil {
		r.logCorrupt(err, -1)
		return err
	}
	return ok
}

func (r *itemReader) readAt(ctx context.Context, p []byte, off int64) (int, error) {
	if r.spool != nil {
		n, err := r.spool.ReadAtContext(ctx, p, off)
		r.logCorrupt(err, off+int64(n))
		return n, err
	}
	if cr, ok := r.raw.(cache.ContextReaderAt); ok {
		return cr.ReadAtContext(ctx, p, off)
	}
	return r.raw.ReadAt(p, off)
}

// logCorrupt logs damage found in an item's stream, naming the source
// and the decompressed offset of the damage (at if the error has none).
func (r *itemReader) logCorrupt(err error, at int64) {
	if err == nil || !errors.Is(err, decomp.ErrCorrupt) {
		return
	}
	var ce *decomp.CorruptError
	if errors.As(err, &ce) && ce.Offset >= 0 {
		at = ce.Offset
	}
	r.fs.Log.Error("corrupt compressed data: reads past the damage fail", "source", remote.RedactURL(r.it.Obj.URL),
		"item", r.it.Name, "offset", at, "err", err.Error())
}

// size is the item's size if known now.
func (r *itemReader) size() (int64, bool) {
	if r.it.Member != nil {
		return r.it.Member.Size, true
	}
	if r.spool != nil {
		return r.spool.Size()
	}
	return r.it.Obj.Size, true
}

func (r *itemReader) Close() error {
	if r.spool != nil {
		r.fs.spools.release(r.spool, r.it.Key)
		return nil
	}
	return r.raw.Close()
}
