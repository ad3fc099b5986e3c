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
	// tell, if set, is told what the spools hold or have reserved after
	// each change (the block cache leaves that much room: SetBeside).
	// Called with mu held; it must not lock.
	tell func(int64)
	// freeBlocks, if set, asks the block cache to evict blocks nobody
	// reads until they fit beside n bytes of spools. Called without mu.
	freeBlocks func(n int64)
	log        *slog.Logger
	set        decomp.SpoolSet
	// opened counts decompressions started (tests check that a re-read
	// of a complete spool decompresses nothing).
	opened atomic.Int64

	mu sync.Mutex // guards files, total, reserved, memo; never held across I/O
	// files are the spools on disk, by file name: complete ones (size
	// known, counted in total) and ones being written (size -1, their
	// room granted so far counted in reserved).
	files    map[string]*spoolFile
	total    int64
	reserved int64
	// memo remembers per object version what planning found out (format,
	// size, members), so that a plan made every second costs no reads.
	memo map[string]any
}

type spoolFile struct {
	size    int64
	lastUse time.Time
	refs    int
	// reserved is the room granted to a spool being written (grow).
	reserved int64
	// fullLogged: the spool's "does not fit" was logged.
	fullLogged bool
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

// useExternalDecoders decodes xz with the xz program when it is
// installed: it is about twice as fast as the Go decoder (and
// multi-threaded). zstd decodes with libzstd in this process where the
// build has it (cgo), else with the zstd program, else in Go.
// INTAKEFS_DECODERS=go keeps both in Go.
func useExternalDecoders() {
	externalOnce.Do(func() {
		if os.Getenv("INTAKEFS_DECODERS") == "go" {
			decomp.NativeZstd = false
			return
		}
		if p, err := exec.LookPath("xz"); err == nil {
			decomp.ExternalXZ = p
		}
		if p, err := exec.LookPath("zstd"); err == nil && !decomp.NativeZstd {
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

// spoolFloor is the free space a spool being written leaves on the
// disk: the block cache's --cache-min-free; none without a block cache
// (a full disk still stops a spool cleanly, see decomp.ErrSpoolFull).
func (f *FS) spoolFloor() int64 {
	if c, ok := f.Opener.(*cache.Cache); ok {
		return max(c.Stats().MinFreeBytes, 0)
	}
	return 0
}

// logFull logs, once per spool, that an item's decompressed data does not
// fit in the cache (decomp.ErrSpoolFull): reads past what was spooled fail
// with EIO.
func (s *spools) logFull(it *Item, err error, at int64) {
	if err == nil || !errors.Is(err, decomp.ErrSpoolFull) {
		return
	}
	name := decomp.SpoolName(it.Key)
	s.mu.Lock()
	f := s.files[name]
	logged := f != nil && f.fullLogged
	if f != nil {
		f.fullLogged = true
	}
	s.mu.Unlock()
	if !logged {
		s.log.Error(err.Error(), "source", remote.RedactURL(it.Obj.URL), "item", it.Name, "offset", at)
	}
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

// complete says whether the spool of a stream is indexed as complete
// (one acquired since it was written, or found on disk).
func (s *spools) complete(key string) bool {
	name := decomp.SpoolName(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[name]
	return f != nil && f.size >= 0
}

// acquire gives the shared spool of an item's stream; release it. While
// it is written the spool stays under the limit and leaves floor bytes
// free on the disk (grow; FS.spoolFloor).
func (s *spools) acquire(item *Item, open func(ctx context.Context) (io.ReadCloser, error), expected, floor int64) (*decomp.Spool, error) {
	key := item.Key
	name := decomp.SpoolName(key)
	src := remote.RedactURL(item.Obj.URL)
	sp, err := s.set.Acquire(decomp.SpoolConfig{
		Dir:          s.dir,
		Key:          key,
		ExpectedSize: expected,
		Open: func(ctx context.Context) (io.ReadCloser, error) {
			s.opened.Add(1)
			return open(ctx)
		},
		OnSize:  func(size int64) { s.completed(key, name, size) },
		Reserve: func(have, want int64) error { return s.grow(name, src, floor, have, want) },
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
			s.noteLocked()
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
		s.reserved -= f.reserved
		f.reserved = 0
		s.noteLocked()
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
			s.reserved -= f.reserved
			delete(s.files, name)
			s.noteLocked()
		}
	}
	s.mu.Unlock()
	s.evict()
}

// evict removes least recently used complete spools that nobody reads
// until the rest, and the room of the spools being written, fit the
// limit.
func (s *spools) evict() {
	limit := s.limit()
	s.mu.Lock()
	victims := s.victimsLocked(s.total + s.reserved - limit)
	s.mu.Unlock()
	s.remove(victims)
}

// victimsLocked takes out of the index the least recently used complete
// spools that nobody reads, need bytes of them or as many as there are,
// and gives their names for remove. s.mu held.
func (s *spools) victimsLocked(need int64) []string {
	defer s.noteLocked()
	if need <= 0 {
		return nil
	}
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
	var victims []string
	var got int64
	for _, c := range cs {
		if got >= need {
			break
		}
		got += c.f.size
		s.total -= c.f.size
		delete(s.files, c.name)
		victims = append(victims, c.name)
	}
	return victims
}

// remove deletes evicted spool files.
func (s *spools) remove(victims []string) {
	for _, n := range victims {
		if err := os.Remove(filepath.Join(s.dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("evicting a spool", "file", n, "err", err.Error())
		}
	}
}

// spoolFullError is why a spool being written may not grow.
type spoolFullError struct{ msg string }

func (e *spoolFullError) Error() string { return e.msg }
func (e *spoolFullError) Unwrap() error { return decomp.ErrSpoolFull }

// grow gives a spool being written (file name) room for want bytes in
// all, have of them on disk now: the spools, complete and being written,
// stay under the limit, and the disk keeps floor bytes free. Complete
// spools that nobody reads are evicted for it, least recently used first;
// when that is not enough, nothing is evicted and the spool may not grow.
func (s *spools) grow(name, src string, floor, have, want int64) error {
	released := false
again:
	limit := s.limit()
	free, ferr := int64(0), error(nil)
	if floor > 0 {
		free, ferr = decomp.DiskFree(s.dir)
	}
	s.mu.Lock()
	f := s.files[name]
	if f == nil {
		// no longer indexed: released, its Spool closing (and its file
		// going with it)
		s.mu.Unlock()
		return nil
	}
	delta := want - f.reserved
	if delta <= 0 {
		s.mu.Unlock()
		return nil
	}
	overLimit := s.total + s.reserved + delta - limit
	overDisk := int64(0)
	if floor > 0 && ferr == nil {
		overDisk = floor - (free - max(want-have, 0))
	}
	var evictable int64
	for _, g := range s.files {
		if g.refs == 0 && g.size >= 0 {
			evictable += g.size
		}
	}
	if overLimit > evictable && s.freeBlocks != nil && !released {
		// cached blocks take what spools need: ask the block cache to
		// let go of some (least recently used, unread) so that the
		// blocks and what the spools need at least fit, then try again
		need := s.total + s.reserved + delta - evictable
		s.mu.Unlock()
		s.freeBlocks(need)
		released = true
		goto again
	}
	if overLimit > evictable {
		s.mu.Unlock()
		return &spoolFullError{fmt.Sprintf("decompressed data of %s exceeds the cache limit of %d bytes (--cache-max-size); stopped after %d bytes",
			src, limit, have)}
	}
	if overDisk > evictable {
		s.mu.Unlock()
		return &spoolFullError{fmt.Sprintf("decompressed data of %s does not fit on the cache's disk: %d bytes more would leave less than %d bytes free on %s (--cache-min-free); stopped after %d bytes",
			src, want-have, floor, s.dir, have)}
	}
	victims := s.victimsLocked(max(overLimit, overDisk))
	f.reserved += delta
	s.reserved += delta
	s.noteLocked()
	s.mu.Unlock()
	s.remove(victims)
	return nil
}

func (s *spools) noteLocked() {
	if s.tell != nil {
		s.tell(s.total + s.reserved)
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
			rc, err := f.zipMember(ctx, store, obj, *member, ra)
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

// archiveListing is what archiveMembers found in one archive object
// version (remembered): its members, and what was wrong with it but could
// be worked around (a name given twice, damage that cuts the archive
// short), for errors.txt.
type archiveListing struct {
	items    []Item
	problems []string
}

// archiveMembers lists the regular members of an archive object, with
// where their bytes are; a compressed tar is decompressed once (into its
// spool) to be listed. Two members whose names clean to the same name are
// one: the first in the archive is kept, the others are left out and
// reported. A tar damaged or cut short gives the members before the
// damage (the last one may be short: its reads fail there), and the
// damage is reported.
func (f *FS) archiveMembers(ctx context.Context, store remote.Store, obj *remote.ObjectInfo, fm decomp.Format) ([]Item, []string, error) {
	mk := "members\x00" + obj.URL + "\x00" + obj.Identity() + "\x00" + fm.String()
	if v, ok := f.spools.recall(mk); ok {
		l := v.(*archiveListing)
		return l.items, l.problems, nil
	}
	r, err := f.Opener.Open(ctx, store, *obj)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	shown := remote.RedactURL(obj.URL)
	var items []Item
	var problems []string
	first := map[string]string{} // a cleaned name → the member's name as stored
	add := func(m decomp.Member, it Item) {
		if m.Type != decomp.Regular {
			return
		}
		name, ok := decomp.CleanName(m.Name)
		if !ok {
			f.Log.Warn("archive member with an unsafe name left out", "archive", shown, "member", m.Name)
			return
		}
		if prev, dup := first[name]; dup {
			problems = append(problems, fmt.Sprintf("%s: member %q has the name %q of an earlier member (%q): only the first is used", shown, m.Name, name, prev))
			f.Log.Warn("archive member with the name of an earlier member left out", "archive", shown, "member", m.Name, "name", name)
			return
		}
		first[name] = m.Name
		mm := m
		it.Name, it.Obj, it.Format, it.Member = name, obj, fm, &mm
		items = append(items, it)
	}
	switch fm.Archive {
	case decomp.Zip:
		z, err := decomp.OpenZip(ctxReaderAt{ctx, r}, obj.Size)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", obj.URL, err)
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
			sp, err := f.spools.acquire(it, f.streamOpener(store, it), -1, f.spoolFloor())
			if err != nil {
				return nil, nil, err
			}
			defer f.spools.release(sp, key)
			ra, size = sp, -1
		}
		t, scanErr := decomp.ScanTar(ctx, ra, size)
		var ms []decomp.Member
		if t != nil {
			ms = t.Members()
		}
		listed := t != nil
		if key != "" && errors.Is(scanErr, decomp.ErrSpoolFull) {
			// Too big for the spool: list it from a decompression of its
			// own, which keeps nothing (reads of members past what fits
			// fail, logged).
			f.Log.Warn(scanErr.Error()+": listing the archive without a spool", "archive", shown)
			it := &Item{Obj: obj, Format: fm, Key: key, Size: -1}
			rc, err := f.streamOpener(store, it)(ctx)
			if err != nil {
				return nil, nil, err
			}
			ms, scanErr = decomp.ListTar(ctx, rc)
			rc.Close()
		}
		if !listed || scanErr != nil && !errors.Is(scanErr, decomp.ErrCorrupt) {
			return nil, nil, fmt.Errorf("%s: %w", obj.URL, scanErr)
		}
		for _, m := range ms {
			if m.Type == decomp.Regular && m.Offset < 0 {
				return nil, nil, fmt.Errorf("%s: member %q is a sparse file: %w", obj.URL, m.Name, decomp.ErrUnsupported)
			}
			add(m, Item{Size: m.Size, Base: m.Offset, Key: key})
		}
		if scanErr != nil {
			if len(items) == 0 {
				return nil, nil, fmt.Errorf("%s: %w", obj.URL, scanErr)
			}
			problems = append(problems, f.tarDamage(obj, fm, scanErr))
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	f.spools.remember(mk, &archiveListing{items: items, problems: problems})
	return items, problems, nil
}

// itemReader reads one item of an open file.
type itemReader struct {
	it    *Item
	raw   remote.ReaderAtCloser // the object, for items read in place
	spool *decomp.Spool
	fs    *FS
	// release, for a reader lent by an itemSource (which owns raw and
	// spool), gives it back: Close calls it instead of closing them.
	release func()
}

// expectedSize is the decompressed size of an item's stream when known
// before decompressing it (what its spool checks).
func (it *Item) expectedSize() int64 {
	if it.Member != nil && it.Format.Archive == decomp.Zip {
		return it.Member.Size
	} else if it.Member == nil && it.Size >= 0 {
		return it.Size
	}
	return -1
}

// openItem opens an item for reading: the object itself, or the shared
// spool of its decompressed stream. The reader is the caller's to close;
// an itemSource lends readers that share one open object among the
// members of an archive.
func (f *FS) openItem(ctx context.Context, store remote.Store, it *Item) (*itemReader, error) {
	if it.Key == "" {
		r, err := f.Opener.Open(ctx, store, *it.Obj)
		if err != nil {
			return nil, err
		}
		return &itemReader{it: it, raw: r, fs: f}, nil
	}
	sp, err := f.spools.acquire(it, f.streamOpener(store, it), it.expectedSize(), f.spoolFloor())
	if err != nil {
		return nil, err
	}
	return &itemReader{it: it, spool: sp, fs: f}, nil
}

// bounds are where the item's bytes start in what it reads, and its size
// (-1: not known yet).
func (r *itemReader) bounds() (base, size int64) {
	base, size = 0, -1
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
	return base, size
}

// ReadAt reads the item's bytes at off. An item of unknown size ends with
// io.EOF where its stream does.
func (r *itemReader) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	base, size := r.bounds()
	if size >= 0 {
		if off >= size {
			return 0, r.verified(ctx, io.EOF)
		}
		if rem := size - off; int64(len(p)) >= rem {
			n, err := r.memberRead(ctx, p[:rem], base, off)
			if err == nil || errors.Is(err, io.EOF) && int64(n) == rem {
				err = r.verified(ctx, nil)
				if err == nil && int64(len(p)) > rem {
					err = io.EOF
				}
			}
			return n, err
		}
	}
	return r.memberRead(ctx, p, base, off)
}

// memberRead reads the item's bytes at off (base+off in what it reads).
// A member read in place that ends before its recorded size is an archive
// cut short: ErrCorrupt, logged. The bytes of a stored zip member are
// checksummed as they pass (see verified).
func (r *itemReader) memberRead(ctx context.Context, p []byte, base, off int64) (int, error) {
	n, err := r.readAt(ctx, p, base+off)
	if r.it.Member == nil || r.spool != nil {
		return n, err
	}
	if errors.Is(err, io.EOF) && n < len(p) {
		err = &decomp.CorruptError{Format: decomp.None, Offset: off + int64(n), InputOffset: base + off + int64(n),
			Err: fmt.Errorf("%s member %q: %w (the archive is truncated at offset %d)", r.it.Format.Archive, r.it.Member.Name, io.ErrUnexpectedEOF, base+off+int64(n))}
		r.logCorrupt(err, off+int64(n))
	}
	if r.it.Format.Archive == decomp.Zip && n > 0 {
		r.fs.crcFeed(ctx, r, off, p[:n])
	}
	return n, err
}

// verified waits, at the end of an item read from a spool, for its
// stream to end: the checksums that cover the whole stream (a zip
// member's CRC-32, an xz or zstd stream's) are checked only there, and
// damage they find must fail the read rather than pass unnoticed. A zip
// member stored as it is (read in place, no spool) has its CRC-32 checked
// here too, once per object version and member.
func (r *itemReader) verified(ctx context.Context, ok error) error {
	if r.spool == nil {
		if r.it.Member != nil && r.it.Format.Archive == decomp.Zip {
			if err := r.fs.crcCheck(ctx, r); err != nil {
				r.logCorrupt(err, r.it.Member.Size)
				return err
			}
		}
		return ok
	}
	if r.it.Member != nil && r.it.Format.Archive != decomp.Zip {
		return ok
	}
	if _, err := r.spool.Fill(ctx); err != nil {
		r.logCorrupt(err, -1)
		r.fs.spools.logFull(r.it, err, r.spool.Spooled())
		return err
	}
	return ok
}

func (r *itemReader) readAt(ctx context.Context, p []byte, off int64) (int, error) {
	if r.spool != nil {
		n, err := r.spool.ReadAtContext(ctx, p, off)
		r.logCorrupt(err, off+int64(n))
		r.fs.spools.logFull(r.it, err, off+int64(n))
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
	if r.release != nil {
		r.release()
		return nil
	}
	if r.spool != nil {
		r.fs.spools.release(r.spool, r.it.Key)
		return nil
	}
	return r.raw.Close()
}
