package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intakefs/intakefs/remote"
)

// errFakeChanged is what the fake's ReadVersion returns for an old version
// (remote's stores return remote.ErrChanged).
var errFakeChanged = errors.New("fake: object changed")

type fakeObj struct {
	data  []byte
	etag  string
	mtime time.Time
}

type fakeReq struct {
	url      string
	off, len int64
	at       time.Time
}

// fakeStore is an in-memory Store that counts what it is asked for. It
// implements ReadVersion (checking the ETag, or size+mtime without one).
type fakeStore struct {
	mu   sync.Mutex
	objs map[string]*fakeObj
	log  []fakeReq

	requests    atomic.Int64
	bytes       atomic.Int64
	inflight    atomic.Int64
	maxInflight atomic.Int64

	delay   time.Duration // per request
	gate    chan struct{} // when set, requests wait for it to close (or ctx)
	failErr error         // when set, requests fail with it
	short   int64         // when > 0, bodies stop after this many bytes
}

func newFake() *fakeStore { return &fakeStore{objs: map[string]*fakeObj{}} }

func (f *fakeStore) put(url string, data []byte, etag string) remote.ObjectInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := &fakeObj{data: data, etag: etag, mtime: time.Unix(1700000000, int64(len(f.objs)+1)*1000)}
	if old := f.objs[url]; old != nil {
		o.mtime = old.mtime.Add(time.Second)
	}
	f.objs[url] = o
	return remote.ObjectInfo{URL: url, Size: int64(len(data)), ModTime: o.mtime, ETag: etag}
}

func (f *fakeStore) Stat(ctx context.Context, url string) (remote.ObjectInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.objs[url]
	if o == nil {
		return remote.ObjectInfo{}, remote.ErrNotExist
	}
	return remote.ObjectInfo{URL: url, Size: int64(len(o.data)), ModTime: o.mtime, ETag: o.etag}, nil
}

func (f *fakeStore) List(ctx context.Context, url string) ([]remote.ObjectInfo, error) {
	return nil, errors.New("fake: no listing")
}

func (f *fakeStore) ReadRange(ctx context.Context, url string, off, length int64) (io.ReadCloser, error) {
	return f.read(ctx, url, nil, off, length)
}

func (f *fakeStore) ReadVersion(ctx context.Context, info remote.ObjectInfo, off, length int64) (io.ReadCloser, error) {
	return f.read(ctx, info.URL, &info, off, length)
}

func (f *fakeStore) read(ctx context.Context, url string, want *remote.ObjectInfo, off, length int64) (io.ReadCloser, error) {
	f.requests.Add(1)
	in := f.inflight.Add(1)
	for {
		m := f.maxInflight.Load()
		if in <= m || f.maxInflight.CompareAndSwap(m, in) {
			break
		}
	}
	done := func() { f.inflight.Add(-1) }
	f.mu.Lock()
	f.log = append(f.log, fakeReq{url, off, length, time.Now()})
	o := f.objs[url]
	gate, delay, failErr, short := f.gate, f.delay, f.failErr, f.short
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			done()
			return nil, ctx.Err()
		}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			done()
			return nil, ctx.Err()
		}
	}
	if failErr != nil {
		done()
		return nil, failErr
	}
	if o == nil {
		done()
		return nil, remote.ErrNotExist
	}
	if want != nil {
		cur := remote.ObjectInfo{URL: url, Size: int64(len(o.data)), ModTime: o.mtime, ETag: o.etag}
		if cur.Identity() != want.Identity() || cur.Size != want.Size {
			done()
			return nil, errFakeChanged
		}
	}
	if off > int64(len(o.data)) {
		off = int64(len(o.data))
	}
	end := int64(len(o.data))
	if length >= 0 && off+length < end {
		end = off + length
	}
	if short > 0 && end-off > short {
		end = off + short
	}
	f.bytes.Add(end - off)
	return &fakeBody{Reader: bytes.NewReader(o.data[off:end]), done: done}, nil
}

type fakeBody struct {
	*bytes.Reader
	once sync.Once
	done func()
}

func (b *fakeBody) Close() error { b.once.Do(b.done); return nil }

// reqs returns the log of requests, sorted by offset.
func (f *fakeStore) reqs() []fakeReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]fakeReq(nil), f.log...)
	sort.Slice(out, func(i, j int) bool { return out[i].off < out[j].off })
	return out
}

func (f *fakeStore) resetLog() {
	f.mu.Lock()
	f.log = nil
	f.mu.Unlock()
	f.requests.Store(0)
	f.bytes.Store(0)
	f.maxInflight.Store(0)
}

// plainStore hides ReadVersion: a store that cannot check versions.
type plainStore struct{ f *fakeStore }

func (p plainStore) Stat(ctx context.Context, url string) (remote.ObjectInfo, error) {
	return p.f.Stat(ctx, url)
}
func (p plainStore) ReadRange(ctx context.Context, url string, off, n int64) (io.ReadCloser, error) {
	return p.f.ReadRange(ctx, url, off, n)
}
func (p plainStore) List(ctx context.Context, url string) ([]remote.ObjectInfo, error) {
	return p.f.List(ctx, url)
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for k := 0; k < 8; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	for i := n - n%8; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func newTestCache(t testing.TB, o Options) *Cache {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = -1
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func openT(t testing.TB, c *Cache, s remote.Store, info remote.ObjectInfo) *handle {
	t.Helper()
	r, err := c.Open(context.Background(), s, info)
	if err != nil {
		t.Fatal(err)
	}
	h, ok := r.(*handle)
	if !ok {
		t.Fatalf("Open gave %T, want a cache handle", r)
	}
	return h
}

// readAll reads the whole object through h in chunks of n bytes.
func readAll(t testing.TB, h io.ReaderAt, size int64, n int) []byte {
	t.Helper()
	out := make([]byte, size)
	for off := int64(0); off < size; off += int64(n) {
		end := min(off+int64(n), size)
		got, err := h.ReadAt(out[off:end], off)
		if err != nil && !(err == io.EOF && end == size) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", off, end-off, got, err)
		}
		if int64(got) != end-off {
			t.Fatalf("ReadAt(%d, %d) = %d bytes", off, end-off, got)
		}
	}
	return out
}

// waitIdle waits until no fetch is in flight.
func waitIdle(t testing.TB, c *Cache) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Fetching > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("fetches still in flight: %+v", c.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}
