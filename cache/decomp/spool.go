package decomp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// The on-disk layout of a spool directory (the caller's Dir):
//
//	DIR/<h>.spool             a complete decompression: exactly the decompressed
//	                          bytes, nothing else; h = SpoolName(key)
//	DIR/<h>.partial-<rand>    a decompression in progress, flock(2)ed by its writer
//
// A .spool file only ever appears by rename(2) of a partial file after the
// stream decoded to its end without error (every checksum verified), the
// file was fsync(2)ed, and before the directory is fsync(2)ed; so a .spool
// is complete after any crash, a partial never is, and partials are never
// read by a later process: CleanDir removes those whose writer is gone.

const (
	spoolSuffix   = ".spool"
	partialMarker = ".partial-"
)

// SpoolName is the file name (in the caller's directory) of the complete
// spool for key: 128 bits of SHA-256, hex, with ".spool".
func SpoolName(key string) string {
	h := sha256.Sum256([]byte("intakefs-spool/v1\x00" + key))
	return hex.EncodeToString(h[:16]) + spoolSuffix
}

// LookupSpool gives the size of the complete spool for key in dir, if
// there is one. It is the exact decompressed size: a daemon that finished
// a decompression once knows the size at stat time ever after.
func LookupSpool(dir, key string) (int64, bool) {
	fi, err := os.Stat(filepath.Join(dir, SpoolName(key)))
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	return fi.Size(), true
}

// RemoveSpool deletes the complete spool for key (an eviction). Open
// Spools reading it keep working: the file goes when they close it.
func RemoveSpool(dir, key string) error {
	err := os.Remove(filepath.Join(dir, SpoolName(key)))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// CleanDir removes the partial spools in dir whose writer is gone (its
// flock is free): what a crashed or killed daemon left behind. A partial
// spool that is still being written, by this process or another, is kept.
func CleanDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var first error
	for _, e := range ents {
		if !strings.Contains(e.Name(), partialMarker) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if tryLock(f) == nil {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) && first == nil {
				first = err
			}
		}
		f.Close()
	}
	return first
}

// SpoolConfig says what to spool and where.
type SpoolConfig struct {
	// Dir holds the spool files (created if missing). It should be on the
	// cache's filesystem: a complete spool is the cache of the data.
	Dir string
	// Key names the decompressed content: the same key must always mean
	// the same bytes, so it should hold the compressed object's URL and
	// identity (ETag, generation or size+mtime), the format, and the
	// member for an archive member.
	Key string
	// Open starts the decompressed stream from its beginning (NewReader
	// over the compressed object, a zip member, ...). It is called again
	// after an I/O error, to resume: the bytes already spooled are then
	// decoded again and skipped. ctx is cancelled when the Spool closes.
	Open func(ctx context.Context) (io.ReadCloser, error)
	// ExpectedSize is the decompressed size when known beforehand
	// (KnownSize, a zip's or tar's directory), else -1. Reads at or past
	// it end at once; a stream that does not end there is ErrCorrupt.
	ExpectedSize int64
	// Readahead is how far past the furthest byte a reader has asked for
	// the decompression runs before it pauses (0: what the window holds
	// beside two chunks, 6 MiB, when the file is written with O_DIRECT;
	// else 64 MiB). Negative: it runs to the end once started.
	Readahead int64
	// OnSize, if set, is called once, from the decompressing goroutine,
	// when the exact size becomes known (at the end of the stream). It is
	// not called for a spool that was already complete when opened: see
	// Size.
	OnSize func(size int64)
	// ChunkSize is the unit of decompression and of writing to the spool
	// file (0: 1 MiB). Memory per Spool being written is its window of
	// recent chunks (windowChunks of them) plus the decoder's state;
	// none once the decompression stops.
	ChunkSize int
	// Reserve, if set, bounds the spool file while it is written: before
	// the file grows past what was granted, Reserve is asked for room for
	// want bytes in all (have is the file's size now). It is called from
	// the decompressing goroutine with no lock held, for ReserveStep bytes
	// at a time (rounded up; the exact size when that is refused). A
	// refusal stops the decompression for good: readers get the bytes
	// spooled before it, then Reserve's error, made to match ErrSpoolFull.
	// A write that finds the disk full (ENOSPC, EDQUOT) stops it the same
	// way, Reserve or not.
	Reserve func(have, want int64) error
}

// ReserveStep is how much room a Spool asks SpoolConfig.Reserve for at a
// time.
const ReserveStep = 16 << 20

// ErrSpoolFull is matched (errors.Is) by the error of a Spool whose
// decompressed data does not fit: SpoolConfig.Reserve refused to let the
// file grow, or the disk was full. It does not match ErrCorrupt (the data
// may be sound), nor the errno of a full disk.
var ErrSpoolFull = errors.New("decompressed data does not fit in the spool")

// spoolFullError gives its cause's message and matches ErrSpoolFull.
type spoolFullError struct{ err error }

func (e *spoolFullError) Error() string   { return e.err.Error() }
func (e *spoolFullError) Unwrap() []error { return []error{ErrSpoolFull, e.err} }

func spoolFull(err error) error {
	if errors.Is(err, ErrSpoolFull) {
		return err
	}
	return &spoolFullError{err}
}

// Spool gives random access (ReadAt) to a decompressed stream by
// decompressing it, in order and once, into a file. Reads of bytes already
// decompressed are served from the file; a read further on waits for the
// decompression to get there (starting it if needed). Any number of
// goroutines may read at once; they share one decompression. No lock is
// held while decoding or doing I/O: readers wait on a notification of
// "decompressed up to N".
type Spool struct {
	cfg    SpoolConfig
	final  string // DIR/<h>.spool
	ctx    context.Context
	cancel context.CancelFunc

	// direct says the spool file takes O_DIRECT (set at open, for a spool
	// this process writes). Each run of the producer opens its own
	// O_DIRECT descriptor for whole chunks and closes it when it stops;
	// readers open one (dr) the first time a big read misses the window,
	// as the page cache does not hold those bytes. So a complete spool
	// nobody reads that way costs one descriptor, as before.
	direct bool

	// Lock order: mu before no other lock; a window chunk's lock is
	// never taken with mu held.
	mu   sync.Mutex
	f    *os.File
	path string // the file f is, partial or final
	// win is the producer's window: the last chunks it wrote, which
	// readers copy from before going to f (nil when no producer ran).
	win []*chunk
	// dr is the O_DIRECT descriptor for readers (nil until needed, or
	// when it cannot be had); closed by Close once no read is in flight.
	dr       *os.File
	avail    int64 // bytes [0, avail) are in f
	want     int64 // the producer runs until avail >= want
	size     int64 // -1 until the end of the stream
	complete bool
	perm     error // a permanent error (damage) at avail
	transErr error // the last I/O error, reported to the readers waiting when it happened
	errSeq   int   // bumped at each transient error
	running  bool
	closed   bool
	inflight int // reads of f in progress, without s.mu
	persist  error
	// granted is the room Reserve gave (the file may grow that far), and
	// exact says that a rounded-up request was refused: only the producer
	// touches them, and only one producer runs at a time.
	granted int64
	exact   bool
	changed chan struct{} // closed and replaced at each change of state
	sizeCh  chan struct{} // closed when size is known
	wg      sync.WaitGroup
}

// OpenSpool opens the spool for cfg.Key: the complete one in cfg.Dir if
// there is one (no decompression at all), else a new partial one that
// fills as it is read.
func OpenSpool(cfg SpoolConfig) (*Spool, error) {
	if cfg.Open == nil {
		return nil, errors.New("decomp: SpoolConfig.Open is nil")
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = 1 << 20
	}
	if e := cfg.ExpectedSize; e >= 0 && e < int64(cfg.ChunkSize) {
		// a small stream (a zip member) needs no window of megabytes:
		// an archive of thousands of them opens a spool for each
		cfg.ChunkSize = int(max(e+directAlign-1, directAlign) / directAlign * directAlign)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	s := &Spool{
		cfg:     cfg,
		final:   filepath.Join(cfg.Dir, SpoolName(cfg.Key)),
		size:    -1,
		changed: make(chan struct{}),
		sizeCh:  make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if f, err := os.Open(s.final); err == nil {
		fi, err := f.Stat()
		if err == nil && fi.Mode().IsRegular() && (cfg.ExpectedSize < 0 || fi.Size() == cfg.ExpectedSize) {
			s.f, s.path = f, s.final
			s.avail, s.size, s.complete = fi.Size(), fi.Size(), true
			close(s.sizeCh)
			return s, nil
		}
		f.Close()
		os.Remove(s.final) // not what we expect: redo it
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	s.path = strings.TrimSuffix(s.final, spoolSuffix) + partialMarker + hex.EncodeToString(rnd[:])
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		s.cancel()
		return nil, err
	}
	if err := tryLock(f); err != nil {
		f.Close()
		os.Remove(s.path)
		s.cancel()
		return nil, fmt.Errorf("decomp: locking %s: %w", s.path, err)
	}
	s.f = f
	if d := openDirect(s.path); d != nil {
		s.direct = true
		d.Close()
	}
	if s.cfg.Readahead == 0 {
		s.cfg.Readahead = 64 << 20
		if s.direct {
			// what the window holds besides the chunk being refilled
			// and the one a reader is in: ahead of that, readers would
			// find the bytes on disk only
			s.cfg.Readahead = int64(windowChunks-2) * int64(s.cfg.ChunkSize)
		}
	}
	return s, nil
}

// notify wakes every waiter; s.mu held.
func (s *Spool) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Size is the decompressed size, once known: at the end of the
// decompression, or at once for a spool that was complete when opened.
func (s *Spool) Size() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size, s.size >= 0
}

// SizeKnown is closed when Size becomes known.
func (s *Spool) SizeKnown() <-chan struct{} { return s.sizeCh }

// Spooled is how many decompressed bytes are in the spool file now.
func (s *Spool) Spooled() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.avail
}

// Complete reports whether the whole stream is in the spool file, and its
// path once it is persisted (renamed into place; "" before that, or if
// persisting failed). A complete spool's file is the data, byte for byte:
// it can be handed to FUSE passthrough.
func (s *Spool) Complete() (path string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.complete && s.path == s.final {
		return s.final, true
	}
	return "", s.complete
}

// Err is the permanent error of the stream (damage, matching ErrCorrupt),
// if decompression found one.
func (s *Spool) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perm
}

// ReadAt reads decompressed bytes at off, decompressing as far as needed.
func (s *Spool) ReadAt(p []byte, off int64) (int, error) {
	return s.ReadAtContext(context.Background(), p, off)
}

// ReadAtContext is ReadAt that gives up waiting when ctx is done (the
// decompression goes on for other readers).
func (s *Spool) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("decomp: negative offset")
	}
	if len(p) == 0 {
		return 0, nil
	}
	end := off + int64(len(p))
	if end < off {
		end = math.MaxInt64
	}
	s.mu.Lock()
	seq := s.errSeq
	var limit int64 // the end of what this read can get
	for {
		if s.closed {
			s.mu.Unlock()
			return 0, os.ErrClosed
		}
		limit = end
		if s.complete {
			limit = min(end, s.size)
		} else if e := s.cfg.ExpectedSize; e >= 0 {
			limit = min(end, e)
		}
		if limit <= off || limit <= s.avail || s.perm != nil || s.errSeq != seq {
			break
		}
		// Ask for more.
		want := limit
		if s.cfg.Readahead < 0 {
			want = math.MaxInt64
		} else if want < math.MaxInt64-s.cfg.Readahead {
			want += s.cfg.Readahead
		} else {
			want = math.MaxInt64
		}
		if want > s.want {
			s.want = want
			s.notify()
		}
		if !s.running {
			s.start()
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		s.mu.Lock()
	}
	// What there is to serve, and why not more.
	avail, f, win := s.avail, s.f, s.win
	var dr *os.File
	if s.direct && int64(len(p)) >= directReadMin {
		dr = s.directReaderLocked()
	}
	n := max(min(limit, avail)-off, 0)
	var tail error
	if n < int64(len(p)) {
		switch {
		case s.perm != nil && end > avail:
			tail = s.perm
		case limit < end && limit <= avail:
			tail = io.EOF // the end of the data (known, or expected)
		case s.errSeq != seq:
			tail = s.transErr
		default:
			tail = io.EOF
		}
	}
	s.inflight++
	s.mu.Unlock()
	defer s.readDone()
	for done := int64(0); done < n; {
		// the window first (bytes just decompressed, which O_DIRECT
		// left out of the page cache), then the file
		if k := fromWindow(win, p[done:n], off+done); k > 0 {
			done += int64(k)
			continue
		}
		k, err := readSpoolFile(f, dr, p[done:n], off+done)
		if err != nil && !(err == io.EOF && int64(k) == n-done) {
			return int(done) + k, fmt.Errorf("decomp: reading spool file: %w", err)
		}
		break
	}
	return int(n), tail
}

// directReaderLocked is the readers' O_DIRECT descriptor, opened the
// first time it is wanted; nil when it cannot be had now (the read then
// goes through the page cache). s.mu held.
func (s *Spool) directReaderLocked() *os.File {
	if s.dr == nil {
		s.dr = openDirect(s.path)
	}
	return s.dr
}

func (s *Spool) readDone() {
	s.mu.Lock()
	s.inflight--
	if s.inflight == 0 && s.closed {
		s.notify()
	}
	s.mu.Unlock()
}

// Fill decompresses the whole stream into the spool and returns its size
// (cache warming; a caller that must know the size now).
func (s *Spool) Fill(ctx context.Context) (int64, error) {
	s.mu.Lock()
	seq := s.errSeq
	for !s.complete {
		if s.closed {
			s.mu.Unlock()
			return 0, os.ErrClosed
		}
		if s.perm != nil {
			err := s.perm
			s.mu.Unlock()
			return 0, err
		}
		if s.errSeq != seq {
			err := s.transErr
			s.mu.Unlock()
			return 0, err
		}
		if s.want != math.MaxInt64 {
			s.want = math.MaxInt64
			s.notify()
		}
		if !s.running {
			s.start()
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		s.mu.Lock()
	}
	size := s.size
	s.mu.Unlock()
	return size, nil
}

// start runs the producer; s.mu held.
func (s *Spool) start() {
	s.running = true
	s.wg.Add(1)
	go s.produce(s.avail)
}

// produce decompresses into the file from the start of the stream,
// skipping the first skip bytes (already spooled by an earlier run).
func (s *Spool) produce(skip int64) {
	defer s.wg.Done()
	// the writer too: it blocks in O_DIRECT writes, the same dance
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := s.run(skip)
	s.mu.Lock()
	s.running = false
	// the window's memory goes with the producer: everything is in the
	// file, and an open but idle spool should cost no buffers
	s.win = nil
	if err != nil && !s.closed {
		if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrSpoolFull) {
			s.perm = err
		} else {
			s.transErr = err
			s.errSeq++
		}
	}
	s.notify()
	s.mu.Unlock()
}

func (s *Spool) run(skip int64) error {
	rc, err := s.cfg.Open(s.ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	if skip > 0 {
		k, err := io.CopyN(io.Discard, rc, skip)
		if err != nil {
			if err == io.EOF {
				return &CorruptError{Offset: k, InputOffset: -1, Err: fmt.Errorf("stream is now shorter (%d bytes) than what was spooled (%d)", k, skip)}
			}
			return err
		}
	}
	win := newWindow(windowChunks, s.cfg.ChunkSize)
	s.mu.Lock()
	s.win = win
	s.mu.Unlock()
	var dw *os.File
	if s.direct {
		if dw = openDirect(s.path); dw != nil {
			defer dw.Close()
		}
	}
	off := skip
	expected := s.cfg.ExpectedSize
	chunks, stop := decodeAhead(rc, win)
	defer stop() // before rc.Close (deferred above): the decoder must be done with rc
	for {
		s.mu.Lock()
		// Pause when far enough ahead of the readers; but at the
		// expected size, go on to confirm the end (and complete).
		for s.avail >= s.want && !s.closed && !(expected >= 0 && s.avail >= expected) {
			ch := s.changed
			s.mu.Unlock()
			<-ch
			s.mu.Lock()
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return nil
		}
		d := <-chunks
		c, n, rerr := d.c, d.n, d.err
		buf := c.buf
		if expected >= 0 && off+int64(n) > expected {
			// Longer than it should be: keep what fits, then fail.
			n = int(max(expected-off, 0))
			rerr = &CorruptError{Offset: expected, InputOffset: -1,
				Err: fmt.Errorf("stream longer than its recorded size %d", expected)}
		}
		if n > 0 {
			if end := off + int64(n); end > s.granted && s.cfg.Reserve != nil {
				if err := s.reserve(off, end); err != nil {
					return err
				}
			}
			w := s.f
			if dw != nil && off%directAlign == 0 && n%directAlign == 0 {
				w = dw // the tail, and anything after a resume at an odd offset, go through f
			}
			if _, werr := w.WriteAt(buf[:n], off); werr != nil {
				if isNoSpace(werr) {
					s.f.Truncate(off) // give back what the short write took
					return spoolFull(fmt.Errorf("decomp: the disk holding %s is full after %d bytes of decompressed data (%v)", s.cfg.Dir, off, werr))
				}
				return fmt.Errorf("decomp: writing spool %s: %w", s.path, werr)
			}
			c.mu.Lock()
			c.off, c.n = off, n
			c.mu.Unlock()
			off += int64(n)
		}
		if rerr == io.EOF && expected >= 0 && off != expected {
			rerr = &CorruptError{Offset: off, InputOffset: -1,
				Err: fmt.Errorf("stream ended at %d, its recorded size is %d", off, expected)}
		}
		s.mu.Lock()
		s.avail = off
		if rerr == io.EOF {
			s.complete, s.size = true, off
			close(s.sizeCh)
		}
		s.notify()
		s.mu.Unlock()
		if rerr == io.EOF {
			if s.cfg.OnSize != nil {
				s.cfg.OnSize(off)
			}
			s.persistFile()
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// decoded is a chunk of the window filled by decodeAhead: n bytes of
// the stream, then err (io.EOF at the end).
type decoded struct {
	c   *chunk
	n   int
	err error
}

// decodeAhead decodes the stream into the window's chunks in turn, in a
// goroutine of its own, up to decodeAheadChunks ahead of the chunk the
// producer is writing: decoding the next chunk overlaps writing this one
// (an O_DIRECT write waits for the disk), so a decoder in this process
// gets a core to itself as a child process does. In one goroutine the two
// took turns: libzstd in-process spooled 1 GB in 1.9 s, the child zstd
// (decoding beside us) in 1.3 s.
//
// stop makes it quit and waits until it no longer touches rc or the
// window. The chunks it skips (n == 0) keep readers out of them while
// they are refilled; the one it refills is the oldest, written and
// published long before (decodeAheadChunks+1 < windowChunks).
func decodeAhead(rc io.Reader, win []*chunk) (<-chan decoded, func()) {
	out := make(chan decoded, decodeAheadChunks)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		// A thread of its own: each libzstd call is a cgo call, after
		// which an unlocked goroutine may resume on another thread and
		// core (the runtime hands the P away during a long call), with
		// the decoder's state cold in that core's cache and a wakeup
		// more. Locked, a zstd first read of 1 GB through the mount went
		// from 0.88-0.96x to 1.04-1.07x of zstd -dc (bench_issue6.sh,
		// three runs each, alternating, on a quiet 2-core machine).
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for i := 0; ; i++ {
			c := win[i%len(win)]
			c.mu.Lock()
			c.n = 0
			c.mu.Unlock()
			n, err := fill(rc, c.buf)
			select {
			case out <- decoded{c, n, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return out, func() { close(done); <-exited }
}

// decodeAheadChunks is how many decoded chunks may wait to be written.
const decodeAheadChunks = 2

// reserve asks for room for the file to grow from have to need bytes:
// a step more when it can, need exactly when that is refused.
func (s *Spool) reserve(have, need int64) error {
	want := need
	if !s.exact {
		want = (need + ReserveStep - 1) / ReserveStep * ReserveStep
		if e := s.cfg.ExpectedSize; e >= 0 && want > e {
			want = max(e, need)
		}
	}
	err := s.cfg.Reserve(have, want)
	if err != nil && want > need {
		s.exact = true
		want = need
		err = s.cfg.Reserve(have, want)
	}
	if err != nil {
		return spoolFull(err)
	}
	s.granted = want
	return nil
}

// fill reads until buf is full or the stream ends or fails.
func fill(r io.Reader, buf []byte) (int, error) {
	n, empty := 0, 0
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
		if k == 0 {
			if empty++; empty > 100 {
				return n, io.ErrNoProgress
			}
		}
	}
	return n, nil
}

// persistFile makes the completed partial file the trusted spool:
// fsync, rename into place, fsync the directory.
func (s *Spool) persistFile() {
	err := s.f.Sync()
	if err == nil {
		err = os.Rename(s.path, s.final)
	}
	if err == nil {
		if d, derr := os.Open(s.cfg.Dir); derr == nil {
			d.Sync()
			d.Close()
		}
	}
	s.mu.Lock()
	if err == nil {
		s.path = s.final
	}
	s.persist = err
	s.mu.Unlock()
}

// PersistErr is why a complete spool could not be renamed into place
// (it is still served from its partial file until Close).
func (s *Spool) PersistErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.persist
}

// Close stops the decompression and closes the file. A spool that is not
// complete is deleted (it could never be trusted by a later process).
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.notify()
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.inflight > 0 {
		ch := s.changed
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	if s.path != s.final {
		os.Remove(s.path)
	}
	if s.dr != nil {
		s.dr.Close()
	}
	return s.f.Close()
}

// SpoolSet shares one Spool per key among its users, so that concurrent
// opens of the same data share one decompression.
type SpoolSet struct {
	mu sync.Mutex
	m  map[string]*spoolRef
}

type spoolRef struct {
	s    *Spool
	refs int
}

// Acquire returns the open Spool for cfg.Key, opening it with cfg if
// there is none. Each Acquire is paired with one Release.
func (ss *SpoolSet) Acquire(cfg SpoolConfig) (*Spool, error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m == nil {
		ss.m = make(map[string]*spoolRef)
	}
	if r, ok := ss.m[cfg.Key]; ok {
		r.refs++
		return r.s, nil
	}
	s, err := OpenSpool(cfg)
	if err != nil {
		return nil, err
	}
	ss.m[cfg.Key] = &spoolRef{s: s, refs: 1}
	return s, nil
}

// Release drops one reference to s; the last one closes it.
func (ss *SpoolSet) Release(s *Spool) error {
	ss.mu.Lock()
	r, ok := ss.m[s.cfg.Key]
	if !ok || r.s != s {
		ss.mu.Unlock()
		return s.Close()
	}
	r.refs--
	if r.refs > 0 {
		ss.mu.Unlock()
		return nil
	}
	delete(ss.m, s.cfg.Key)
	ss.mu.Unlock()
	return s.Close()
}
