package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intakefs/intakefs/remote"
)

const kib = 1 << 10
const mib = 1 << 20

func TestRandomReadsExact(t *testing.T) {
	for _, bs := range []int64{16 * kib, mib} {
		t.Run(fmt.Sprint(bs), func(t *testing.T) {
			f := newFake()
			size := int(11*bs + 12345)
			data := randBytes(1, size)
			info := f.put("mem://a", data, "e1")
			c := newTestCache(t, Options{BlockSize: bs, ReadaheadMin: bs, ReadaheadMax: 8 * bs})
			h := openT(t, c, f, info)
			defer h.Close()
			var wg sync.WaitGroup
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(g), 7))
					iters := 300
					if bs >= mib {
						iters = 60 // big reads: slow under -race
					}
					for i := 0; i < iters; i++ {
						off := r.Int64N(int64(size) + 10)
						n := r.IntN(int(3*bs)) + 1
						if r.IntN(10) == 0 {
							n = r.IntN(64) + 1
						}
						buf := make([]byte, n)
						got, err := h.ReadAt(buf, off)
						wantN := max(0, min(int64(n), int64(size)-off))
						if int64(got) != wantN {
							t.Errorf("ReadAt(%d, %d) = %d bytes, want %d (%v)", off, n, got, wantN, err)
							return
						}
						if wantN < int64(n) && err != io.EOF {
							t.Errorf("ReadAt(%d, %d) past the end: err %v, want EOF", off, n, err)
						}
						if wantN == int64(n) && err != nil {
							t.Errorf("ReadAt(%d, %d): %v", off, n, err)
						}
						if !bytes.Equal(buf[:got], data[min(off, int64(size)):min(off, int64(size))+int64(got)]) {
							t.Errorf("ReadAt(%d, %d): wrong bytes", off, n)
							return
						}
					}
				}(g)
			}
			wg.Wait()
			// Whole reads, and the edge cases.
			if got := readAll(t, h, int64(size), 100000); !bytes.Equal(got, data) {
				t.Fatal("sequential read differs")
			}
			if n, err := h.ReadAt(nil, 5); n != 0 || err != nil {
				t.Errorf("empty read = %d, %v", n, err)
			}
			if _, err := h.ReadAt(make([]byte, 1), -1); err == nil {
				t.Error("negative offset: no error")
			}
			if n, err := h.ReadAt(make([]byte, 1), int64(size)); n != 0 || err != io.EOF {
				t.Errorf("read at EOF = %d, %v", n, err)
			}
			waitIdle(t, c)
			if s := c.Stats(); s.RemoteBytes != int64(size) {
				t.Errorf("fetched %d bytes of a %d-byte object (each block once): %+v", s.RemoteBytes, size, s)
			}
		})
	}
}

func TestEmptyObject(t *testing.T) {
	f := newFake()
	info := f.put("mem://empty", nil, "e")
	c := newTestCache(t, Options{})
	h := openT(t, c, f, info)
	defer h.Close()
	if n, err := h.ReadAt(make([]byte, 10), 0); n != 0 || err != io.EOF {
		t.Errorf("ReadAt = %d, %v", n, err)
	}
	if err := c.Warm(context.Background(), f, info, nil); err != nil {
		t.Error(err)
	}
}

func TestPersistsAcrossInstances(t *testing.T) {
	dir := t.TempDir()
	f := newFake()
	data := randBytes(2, 5*mib+77)
	info := f.put("mem://p", data, "e1")
	c1, err := New(Options{Dir: dir, MinFreeBytes: -1, BlockSize: mib})
	if err != nil {
		t.Fatal(err)
	}
	h := openT(t, c1, f, info)
	if !bytes.Equal(readAll(t, h, info.Size, 128*kib), data) {
		t.Fatal("first read differs")
	}
	h.Close()
	waitIdle(t, c1)
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	fetched := f.requests.Load()
	if fetched == 0 || fetched > 6 || f.bytes.Load() != info.Size {
		t.Errorf("first read made %d requests for %d bytes, want at most 6 (each block once)", fetched, f.bytes.Load())
	}

	c2 := newTestCache(t, Options{Dir: dir, BlockSize: mib})
	if s := c2.Stats(); s.CachedBytes != info.Size || s.Objects != 1 {
		t.Errorf("after restart: %+v", s)
	}
	h2 := openT(t, c2, f, info)
	defer h2.Close()
	if !bytes.Equal(readAll(t, h2, info.Size, 128*kib), data) {
		t.Fatal("second read differs")
	}
	waitIdle(t, c2)
	if n := f.requests.Load(); n != fetched {
		t.Errorf("second instance made %d requests", n-fetched)
	}
	s := c2.Stats()
	if s.HitBytes != info.Size || s.MissBytes != 0 || s.RemoteBytes != 0 {
		t.Errorf("second instance stats: %+v", s)
	}
	es := c2.List()
	if len(es) != 1 || es[0].URL != info.URL || es[0].CachedBytes != info.Size || es[0].Identity != "etag:e1" || es[0].OpenHandles != 1 {
		t.Errorf("List = %+v", es)
	}
}

func TestIdentityChange(t *testing.T) {
	f := newFake()
	bs := int64(64 * kib)
	v1 := randBytes(3, int(8*bs))
	v2 := randBytes(4, int(8*bs))
	info1 := f.put("mem://x", v1, "one")
	c := newTestCache(t, Options{BlockSize: bs})
	h1 := openT(t, c, f, info1)
	buf := make([]byte, bs)
	if _, err := h1.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, v1[:bs]) {
		t.Fatalf("v1 block 0: %v", err)
	}
	waitIdle(t, c)

	info2 := f.put("mem://x", v2, "two") // the object is rewritten
	h2 := openT(t, c, f, info2)
	if got := readAll(t, h2, info2.Size, int(bs)); !bytes.Equal(got, v2) {
		t.Fatal("v2 read gave other bytes")
	}
	// The old handle keeps its version: cached blocks are v1's, blocks it
	// has not got fail rather than give v2's bytes.
	if _, err := h1.ReadAt(buf, 0); err != nil || !bytes.Equal(buf, v1[:bs]) {
		t.Fatalf("v1 handle, cached block: %v", err)
	}
	if n, err := h1.ReadAt(buf, 3*bs); !errors.Is(err, errFakeChanged) {
		t.Fatalf("v1 handle, uncached block: %d bytes, %v; want the store's ErrChanged", n, err)
	}
	h1.Close()
	h2.Close()
	waitIdle(t, c)
	es := c.List()
	if len(es) != 1 || es[0].Identity != "etag:two" || es[0].CachedBytes != 8*bs {
		t.Fatalf("List after the change = %+v", es)
	}
	// v1's directory is gone.
	if _, err := os.Stat(objectDir(c.root, keyOf(info1.URL, info1.Identity(), info1.Size))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("v1 directory still there: %v", err)
	}

	// A store without version checks: the identity (size+mtime) still
	// keys the blocks, so a new mtime never gets old bytes.
	p := plainStore{f}
	n1 := randBytes(5, int(3*bs))
	i1 := f.put("mem://y", n1, "")
	hy := openT(t, c, p, i1)
	if !bytes.Equal(readAll(t, hy, i1.Size, int(bs)), n1) {
		t.Fatal("y v1 differs")
	}
	hy.Close()
	n2 := randBytes(6, int(3*bs))
	i2 := f.put("mem://y", n2, "")
	if i1.Identity() == i2.Identity() {
		t.Fatal("test bug: identities equal")
	}
	hy2 := openT(t, c, p, i2)
	defer hy2.Close()
	if !bytes.Equal(readAll(t, hy2, i2.Size, int(bs)), n2) {
		t.Fatal("y v2 served stale bytes")
	}
}

func TestCorruptBlocksRefetched(t *testing.T) {
	dir := t.TempDir()
	bs := int64(64 * kib)
	f := newFake()
	data := randBytes(7, int(10*bs))
	info := f.put("mem://c", data, "e")
	c1, err := New(Options{Dir: dir, BlockSize: bs, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	h := openT(t, c1, f, info)
	readAll(t, h, info.Size, int(bs))
	h.Close()
	waitIdle(t, c1)
	c1.Close()

	odir := objectDir(filepath.Join(dir, formatDir), keyOf(info.URL, info.Identity(), info.Size))
	df, err := os.OpenFile(filepath.Join(odir, dataName), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte of block 2, cut the file in the middle of block 5.
	b := []byte{0}
	df.ReadAt(b, 2*bs+100)
	b[0] ^= 0x40
	df.WriteAt(b, 2*bs+100)
	df.Truncate(5*bs + bs/2)
	df.Close()
	// Tear block 1's index record.
	xf, _ := os.OpenFile(filepath.Join(odir, indexName), os.O_RDWR, 0)
	xf.WriteAt([]byte{0xff}, 1*recordSize+9)
	xf.Close()

	f.resetLog()
	c2 := newTestCache(t, Options{Dir: dir, BlockSize: bs})
	if s := c2.Stats(); s.CachedBytes != 9*bs {
		t.Errorf("after restart %d bytes cached, want 9 blocks (block 1's record is torn)", s.CachedBytes)
	}
	h2 := openT(t, c2, f, info)
	if got := readAll(t, h2, info.Size, int(bs/3)); !bytes.Equal(got, data) {
		t.Fatal("read after corruption differs from the source")
	}
	h2.Close()
	waitIdle(t, c2)
	s := c2.Stats()
	if s.CorruptBlocks != 6 {
		t.Errorf("CorruptBlocks = %d, want 6 (block 2, blocks 5-9)", s.CorruptBlocks)
	}
	var offs []int64
	for _, r := range f.reqs() {
		offs = append(offs, r.off/bs)
	}
	if fmt.Sprint(offs) != "[1 2 5 6 7 8 9]" {
		t.Errorf("refetched blocks %v, want [1 2 5 6 7 8 9]", offs)
	}
	// Once repaired, it is all served from disk.
	f.resetLog()
	h3 := openT(t, c2, f, info)
	defer h3.Close()
	if !bytes.Equal(readAll(t, h3, info.Size, int(bs)), data) || f.requests.Load() != 0 {
		t.Errorf("third read: %d requests", f.requests.Load())
	}
}

func TestTruncatedIndexAndGarbage(t *testing.T) {
	dir := t.TempDir()
	bs := int64(16 * kib)
	f := newFake()
	data := randBytes(8, int(6*bs))
	info := f.put("mem://g", data, "e")
	c1, _ := New(Options{Dir: dir, BlockSize: bs, MinFreeBytes: -1})
	h := openT(t, c1, f, info)
	readAll(t, h, info.Size, int(bs))
	h.Close()
	waitIdle(t, c1)
	c1.Close()
	root := filepath.Join(dir, formatDir)
	odir := objectDir(root, keyOf(info.URL, info.Identity(), info.Size))
	os.Truncate(filepath.Join(odir, indexName), 3*recordSize+5)
	// Junk next to the entries: a stray file, a directory without meta,
	// a meta that does not match its name.
	os.WriteFile(filepath.Join(root, "objects", "junk"), []byte("x"), 0o600)
	os.MkdirAll(filepath.Join(root, "objects", "ab", "abcdef"), 0o700)
	bad := filepath.Join(root, "objects", "cd", "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd")
	os.MkdirAll(bad, 0o700)
	writeMeta(bad, &metaFile{Format: formatVer, URL: "mem://other", Identity: "etag:z", Size: 5, BlockSize: bs})
	c2 := newTestCache(t, Options{Dir: dir, BlockSize: bs})
	if s := c2.Stats(); s.CachedBytes != 3*bs || s.Objects != 1 {
		t.Errorf("after a truncated index: %+v", s)
	}
	for _, p := range []string{filepath.Join(root, "objects", "junk"), filepath.Join(root, "objects", "ab", "abcdef"), bad} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s not cleaned up", p)
		}
	}
	f.resetLog()
	h2 := openT(t, c2, f, info)
	defer h2.Close()
	if !bytes.Equal(readAll(t, h2, info.Size, int(bs)), data) {
		t.Fatal("differs")
	}
	if n := f.requests.Load(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

// dataBytes is the disk space the cache's data files take.
func dataBytes(t testing.TB, dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == dataName {
			if fi, err := d.Info(); err == nil {
				n += allocatedBytes(fi)
			}
		}
		return nil
	})
	return n
}

func TestEvictionUnderLimit(t *testing.T) {
	bs := int64(64 * kib)
	limit := 8 * bs
	f := newFake()
	c := newTestCache(t, Options{BlockSize: bs, MaxBytes: limit, ReadaheadMin: bs, ReadaheadMax: 4 * bs, MemoryBytes: 8 * bs})
	var objs []remote.ObjectInfo
	var datas [][]byte
	for i := 0; i < 6; i++ {
		d := randBytes(uint64(100+i), int(10*bs-int64(i)*999))
		datas = append(datas, d)
		objs = append(objs, f.put(fmt.Sprintf("mem://e%d", i), d, "v"))
	}
	stop := make(chan struct{})
	var over atomic.Int64
	var samplerDone sync.WaitGroup
	samplerDone.Add(1)
	go func() {
		defer samplerDone.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			c.mu.Lock()
			u := c.used
			c.mu.Unlock()
			if u > limit {
				over.Store(u)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for round := 0; round < 6; round++ {
				i := r.IntN(len(objs))
				h := openT(t, c, f, objs[i])
				if round%2 == 0 {
					if !bytes.Equal(readAll(t, h, objs[i].Size, int(bs/2)), datas[i]) {
						t.Errorf("object %d differs", i)
					}
				} else {
					for k := 0; k < 20; k++ {
						off := r.Int64N(objs[i].Size)
						buf := make([]byte, r.IntN(int(2*bs))+1)
						n, _ := h.ReadAt(buf, off)
						if !bytes.Equal(buf[:n], datas[i][off:off+int64(n)]) {
							t.Errorf("object %d at %d differs", i, off)
						}
					}
				}
				h.Close()
			}
		}(g)
	}
	wg.Wait()
	close(stop)
	samplerDone.Wait()
	waitIdle(t, c)
	if v := over.Load(); v != 0 {
		t.Errorf("cache held %d bytes, over its limit of %d", v, limit)
	}
	s := c.Stats()
	if s.CachedBytes > limit || s.Evictions == 0 {
		t.Errorf("stats: %+v", s)
	}
	if d := dataBytes(t, c.root); d > limit+int64(len(objs))*8*kib {
		t.Errorf("data files take %d bytes on disk, limit %d", d, limit)
	}
	// What is listed is what is accounted.
	var sum int64
	for _, e := range c.List() {
		sum += e.CachedBytes
	}
	if sum != s.CachedBytes {
		t.Errorf("List sums to %d, Stats says %d", sum, s.CachedBytes)
	}
	// A restart sees the same.
	c.Close()
	c2 := newTestCache(t, Options{Dir: c.opt.Dir, BlockSize: bs, MaxBytes: limit})
	if s2 := c2.Stats(); s2.CachedBytes != s.CachedBytes {
		t.Errorf("after restart %d bytes, before %d", s2.CachedBytes, s.CachedBytes)
	}
	// A lower limit applies at start.
	c2.Close()
	c3 := newTestCache(t, Options{Dir: c.opt.Dir, BlockSize: bs, MaxBytes: 2 * bs})
	if s3 := c3.Stats(); s3.CachedBytes > 2*bs {
		t.Errorf("lower limit at start: %d bytes", s3.CachedBytes)
	}
}

func TestEvictionSparesBlocksInUse(t *testing.T) {
	// Blocks being read are never evicted; a block that cannot be made
	// room for is served and not kept.
	bs := int64(16 * kib)
	f := newFake()
	c := newTestCache(t, Options{BlockSize: bs, MaxBytes: 2 * bs})
	data := randBytes(9, int(4*bs))
	info := f.put("mem://s", data, "e")
	for i := int64(0); i < 2; i++ { // blocks 0, 1 (separate handles: no readahead): the cache is full
		hi := openT(t, c, f, info)
		hi.ReadAt(make([]byte, bs), i*bs)
		defer hi.Close()
	}
	waitIdle(t, c)
	h := openT(t, c, f, info)
	defer h.Close()
	c.mu.Lock()
	for _, b := range h.o.blocks {
		b.pins++ // as if two reads were in progress
	}
	c.mu.Unlock()
	buf := make([]byte, bs)
	if _, err := h.ReadAt(buf, 3*bs); err != nil || !bytes.Equal(buf, data[3*bs:]) {
		t.Fatalf("read while full: %v", err)
	}
	waitIdle(t, c)
	s := c.Stats()
	if s.NotStored != 1 || s.Evictions != 0 || s.CachedBytes != 2*bs {
		t.Errorf("stats: %+v", s)
	}
	c.mu.Lock()
	for _, b := range h.o.blocks {
		b.pins--
	}
	c.mu.Unlock()
	if _, err := h.ReadAt(buf, 3*bs); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, c)
	if s := c.Stats(); s.Evictions != 1 || s.CachedBytes != 2*bs {
		t.Errorf("stats: %+v", s)
	}
}

func TestFreeSpaceFloor(t *testing.T) {
	bs := int64(16 * kib)
	dir := t.TempDir()
	// A filesystem with 30 blocks free before the cache writes anything.
	old := diskFree
	diskFree = func(p string) (int64, error) { return 30*bs - dataBytes(t, p), nil }
	defer func() { diskFree = old }()
	c := newTestCache(t, Options{Dir: dir, BlockSize: bs, MaxBytes: -1, MinFreeBytes: 20 * bs})
	f := newFake()
	data := randBytes(10, int(40*bs))
	info := f.put("mem://floor", data, "e")
	h := openT(t, c, f, info)
	defer h.Close()
	// Block by block, each stored before the next is asked for: a reader
	// is handed a block before it is written, so one that outruns the
	// disk finds the earlier blocks still being written, not evictable,
	// and its blocks are then not stored at all (which keeps the floor
	// too, but is not what this test is about).
	buf := make([]byte, bs)
	for off := int64(0); off < info.Size; off += bs {
		if _, err := h.ReadAt(buf, off); err != nil || !bytes.Equal(buf, data[off:off+bs]) {
			t.Fatalf("block at %d: %v, or it differs", off, err)
		}
		waitIdle(t, c)
	}
	// Leave at least 20 blocks free: at most 10 cached (a block of slack
	// for the filesystem's own rounding).
	if s := c.Stats(); s.CachedBytes > 10*bs || s.Evictions == 0 {
		t.Errorf("stats: %+v", s)
	}
	if d := dataBytes(t, c.root); d > 11*bs {
		t.Errorf("data takes %d bytes", d)
	}
}

func TestSequentialReadahead(t *testing.T) {
	f := newFake()
	f.delay = 2 * time.Millisecond
	size := int64(48 * mib)
	data := randBytes(11, int(size))
	info := f.put("mem://seq", data, "e")
	c := newTestCache(t, Options{})
	h := openT(t, c, f, info)
	defer h.Close()
	buf := make([]byte, 128*kib)
	var maxAhead int64
	for off := int64(0); off < size; off += int64(len(buf)) {
		if _, err := h.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, data[off:off+int64(len(buf))]) {
			t.Fatalf("differs at %d", off)
		}
		read := off + int64(len(buf))
		var furthest int64
		for _, r := range f.reqs() {
			furthest = max(furthest, r.off+r.len)
		}
		// What was asked for ahead of the reader: at most about half of
		// what it has read, plus the first window and a block of rounding.
		if ahead := furthest - read; ahead > maxAhead {
			maxAhead = ahead
			if ahead > read/2+2*mib && ahead > 2*mib {
				t.Errorf("after reading %d bytes, fetched %d ahead", read, ahead)
			}
		}
		// Prefetches start their requests on goroutines of their own, so
		// what must be there by now is what was scheduled, not requested.
		if read == 24*mib {
			if s := scheduledEnd(c, h); s < 28*mib {
				t.Errorf("after reading 24 MiB only %d bytes fetched or in flight: no readahead", s)
			}
		}
	}
	waitIdle(t, c)
	// Every byte asked for once, in requests that grow with the window up
	// to FetchMax: a few dozen requests for 768 blocks, not one per block.
	rs := f.reqs()
	var at, longest int64
	for i, r := range rs {
		if r.off != at || r.len <= 0 || r.len > DefaultFetchMax || r.len%c.bs != 0 {
			t.Errorf("request %d: [%d, +%d), want the next whole blocks from %d, at most %d", i, r.off, r.len, at, DefaultFetchMax)
		}
		at = r.off + r.len
		longest = max(longest, r.len)
	}
	if at != size {
		t.Errorf("requests end at %d, want %d", at, size)
	}
	if len(rs) > 64 || longest < 8*mib {
		t.Errorf("%d requests, the longest %d bytes: readahead does not fetch large ranges", len(rs), longest)
	}
	s := c.Stats()
	if s.PrefetchBytes < size*3/4 {
		t.Errorf("readahead fetched only %d of %d bytes: %+v", s.PrefetchBytes, size, s)
	}
	if f.maxInflight.Load() < 2 {
		t.Errorf("readahead is not parallel: at most %d requests at once", f.maxInflight.Load())
	}
	if s.HitBytes < size/2 {
		t.Errorf("readahead served only %d bytes from disk: %+v", s.HitBytes, s)
	}
	t.Logf("max fetched ahead %d MiB, max parallel %d, stats %+v", maxAhead/mib, f.maxInflight.Load(), s)
}

func TestInterleavedStreams(t *testing.T) {
	// Two sequential scans through one handle both get readahead.
	f := newFake()
	bs := int64(64 * kib)
	size := 64 * bs
	data := randBytes(12, int(size))
	info := f.put("mem://two", data, "e")
	c := newTestCache(t, Options{BlockSize: bs, ReadaheadMin: bs, ReadaheadMax: 8 * bs})
	h := openT(t, c, f, info)
	defer h.Close()
	buf := make([]byte, 16*kib)
	for i := int64(0); i < 2*bs/int64(len(buf))*8; i++ {
		for _, base := range []int64{0, 32 * bs} {
			off := base + i*int64(len(buf))
			if _, err := h.ReadAt(buf, off); err != nil || !bytes.Equal(buf, data[off:off+int64(len(buf))]) {
				t.Fatal(err)
			}
		}
	}
	waitIdle(t, c)
	if s := c.Stats(); s.PrefetchRequests < 10 {
		t.Errorf("interleaved streams: %+v", s)
	}
}

func TestRandomReadsDoNotOverfetch(t *testing.T) {
	for _, bs := range []int64{DefaultBlockSize, mib} {
		t.Run(fmt.Sprint(bs), func(t *testing.T) { randomReadsDoNotOverfetch(t, bs) })
	}
}

func randomReadsDoNotOverfetch(t *testing.T, bs int64) {
	f := newFake()
	size := 96 * bs
	data := randBytes(13, int(size))
	info := f.put("mem://rnd", data, "e")
	c := newTestCache(t, Options{BlockSize: bs})
	h := openT(t, c, f, info)
	defer h.Close()
	// Blocks three apart, in random order: no two reads look sequential.
	r := rand.New(rand.NewPCG(5, 5))
	var blocks []int64
	for b := int64(0); b < 96; b += 3 {
		blocks = append(blocks, b)
	}
	r.Shuffle(len(blocks), func(i, j int) { blocks[i], blocks[j] = blocks[j], blocks[i] })
	var want int64
	for _, b := range blocks {
		within := r.Int64N(bs - 10)
		n := r.Int64N(bs-within) + 1
		buf := make([]byte, n)
		off := b*bs + within
		if _, err := h.ReadAt(buf, off); err != nil || !bytes.Equal(buf, data[off:off+n]) {
			t.Fatal(err)
		}
		want += bs
	}
	// A read across a block boundary: the two blocks, no more.
	buf := make([]byte, 100)
	if _, err := h.ReadAt(buf, 50*bs-50); err != nil || !bytes.Equal(buf, data[50*bs-50:50*bs+50]) {
		t.Fatal(err)
	}
	want += 2 * bs
	waitIdle(t, c)
	s := c.Stats()
	if s.RemoteBytes != want || s.PrefetchRequests != 0 {
		t.Errorf("random reads fetched %d bytes (want %d, one block per read), %d prefetches", s.RemoteBytes, want, s.PrefetchRequests)
	}
	// A Parquet-style footer read: the last 8 bytes, then the footer
	// before them, then a column chunk: the blocks they touch.
	f.resetLog()
	big := randBytes(14, 20*mib+5)
	info2 := f.put("mem://pq", big, "e")
	h2 := openT(t, c, f, info2)
	defer h2.Close()
	reads := [][2]int64{{info2.Size - 8, 8}, {info2.Size - 8 - 300*kib, 300 * kib}, {3 * mib, 64 * kib}}
	for _, rd := range reads {
		b := make([]byte, rd[1])
		if _, err := h2.ReadAt(b, rd[0]); err != nil || !bytes.Equal(b, big[rd[0]:rd[0]+rd[1]]) {
			t.Fatal(err)
		}
	}
	waitIdle(t, c)
	if got, need := f.bytes.Load(), touched(reads, bs, info2.Size); got != need {
		t.Errorf("footer and a column chunk fetched %d bytes, want %d (the blocks of %d bytes they touch)", got, need, bs)
	}
}

// touched is the bytes of the blocks of size bs that the ranges (offset,
// length) touch, each block counted once.
func touched(ranges [][2]int64, bs, size int64) int64 {
	seen := map[int64]bool{}
	var n int64
	for _, r := range ranges {
		for i := r[0] / bs; i*bs < r[0]+r[1]; i++ {
			if !seen[i] {
				seen[i] = true
				n += blockLen(size, bs, i)
			}
		}
	}
	return n
}

func TestConcurrentReadersShareOneFetch(t *testing.T) {
	f := newFake()
	f.gate = make(chan struct{})
	data := randBytes(14, 3*mib)
	info := f.put("mem://sf", data, "e")
	c := newTestCache(t, Options{})
	shared := openT(t, c, f, info)
	defer shared.Close()
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			h := shared
			if g%2 == 0 {
				h = openT(t, c, f, info)
				defer h.Close()
			}
			off := mib + int64(g)*1000
			buf := make([]byte, 5000)
			if _, err := h.ReadAt(buf, off); err != nil || !bytes.Equal(buf, data[off:off+5000]) {
				t.Errorf("reader %d: %v", g, err)
			}
		}(g)
	}
	for f.inflight.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(f.gate)
	wg.Wait()
	waitIdle(t, c)
	n := 0
	for _, r := range f.reqs() {
		if r.off == mib {
			n++
		}
	}
	if n != 1 {
		t.Errorf("16 readers of one block made %d requests for it", n)
	}
	if s := c.Stats(); s.MissBlocks != 16 || s.RemoteRequests-s.PrefetchRequests != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestPrefetchMemoryBudget(t *testing.T) {
	bs := int64(64 * kib)
	f := newFake()
	f.delay = 3 * time.Millisecond
	// Requests of one block, so that readahead wants many at once; the
	// budget holds four of them (a request holds one block's buffer).
	c := newTestCache(t, Options{BlockSize: bs, MemoryBytes: 4 * bs, ReadaheadMin: bs, ReadaheadMax: 32 * bs, FetchMax: bs})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		d := randBytes(uint64(200+g), int(40*bs))
		info := f.put(fmt.Sprintf("mem://b%d", g), d, "e")
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := openT(t, c, f, info)
			defer h.Close()
			if !bytes.Equal(readAll(t, h, info.Size, int(bs/4)), d) {
				t.Error("differs")
			}
		}()
	}
	wg.Wait()
	waitIdle(t, c)
	s := c.Stats()
	if m := f.maxInflight.Load(); m > 4 {
		t.Errorf("%d requests in flight at once with memory for 4 blocks", m)
	}
	if s.FetchMemoryPeak > 4*bs || s.FetchMemory != 0 {
		t.Errorf("fetch memory peak %d, now %d, budget %d", s.FetchMemoryPeak, s.FetchMemory, 4*bs)
	}
	if s.PrefetchSkipped == 0 || s.PrefetchRequests == 0 {
		t.Errorf("budget never limited readahead: %+v", s)
	}
}

func TestRemoteErrorSurfaces(t *testing.T) {
	f := newFake()
	data := randBytes(15, 2*mib)
	info := f.put("mem://err", data, "e")
	c := newTestCache(t, Options{})
	h := openT(t, c, f, info)
	defer h.Close()
	boom := fmt.Errorf("wrapped: %w", remote.ErrUnavailable)
	f.failErr = boom
	n, err := h.ReadAt(make([]byte, 10), 5)
	if n != 0 || !errors.Is(err, remote.ErrUnavailable) {
		t.Fatalf("ReadAt = %d, %v; want the store's error", n, err)
	}
	waitIdle(t, c)
	if s := c.Stats(); s.CachedBytes != 0 || s.RemoteErrors != 1 {
		t.Errorf("stats after an error: %+v", s)
	}
	f.failErr = nil
	buf := make([]byte, 10)
	if _, err := h.ReadAt(buf, 5); err != nil || !bytes.Equal(buf, data[5:15]) {
		t.Fatalf("after recovery: %v", err)
	}

	// An object shorter than its info says: an error, not short data.
	f.short = 1000
	_, err = h.ReadAt(make([]byte, 10), mib+5)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short body: %v", err)
	}
}

func TestReadHonoursContext(t *testing.T) {
	f := newFake()
	f.gate = make(chan struct{}) // never opens: a hung server
	defer close(f.gate)
	info := f.put("mem://hang", randBytes(16, mib), "e")
	c := newTestCache(t, Options{})
	h := openT(t, c, f, info)
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := h.ReadAtContext(ctx, make([]byte, 10), 0)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("ReadAtContext = %v after %v", err, time.Since(start))
	}
	// The fetch no one waits for is cancelled.
	deadline := time.Now().Add(5 * time.Second)
	for f.inflight.Load() != 0 || c.Stats().Fetching != 0 {
		if time.Now().After(deadline) {
			t.Fatal("abandoned fetch still running")
		}
		time.Sleep(time.Millisecond)
	}
	if s := c.Stats(); s.RemoteErrors != 0 {
		t.Errorf("a cancelled fetch counted as a remote error: %+v", s)
	}
}

func TestLockedDirectory(t *testing.T) {
	dir := t.TempDir()
	c := newTestCache(t, Options{Dir: dir})
	_, err := New(Options{Dir: dir})
	var le *LockedError
	if !errors.Is(err, ErrLocked) || !errors.As(err, &le) || le.PID != os.Getpid() {
		t.Fatalf("second New = %v", err)
	}
	f := newFake()
	info := f.put("mem://l", randBytes(17, 100), "e")
	h := openT(t, c, f, info)
	readAll(t, h, 100, 100)
	h.Close()
	waitIdle(t, c)
	es, err := ListDir(dir)
	if err != nil || len(es) != 1 || es[0].CachedBytes != 100 || es[0].URL != "mem://l" {
		t.Fatalf("ListDir while locked = %+v, %v", es, err)
	}
	c.Close()
	c2, err := New(Options{Dir: dir})
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	c2.Close()
}

func TestWarmListClear(t *testing.T) {
	f := newFake()
	data := randBytes(18, 5*mib+3)
	info := f.put("mem://w", data, "e")
	other := f.put("mem://o", randBytes(19, 1000), "e")
	c := newTestCache(t, Options{MaxBytes: 8 * mib, BlockSize: mib})
	var last, calls int64
	err := c.Warm(context.Background(), f, info, func(done, total int64) {
		if done < last || total != info.Size || done > total {
			t.Errorf("progress %d/%d after %d", done, total, last)
		}
		last = done
		calls++
	})
	if err != nil || last != info.Size || calls < 6 {
		t.Fatalf("Warm = %v, progress ended at %d after %d calls", err, last, calls)
	}
	f.resetLog()
	h := openT(t, c, f, info)
	if !bytes.Equal(readAll(t, h, info.Size, mib), data) || f.requests.Load() != 0 {
		t.Fatalf("read after warm: %d requests", f.requests.Load())
	}
	h.Close()
	// Warming again fetches nothing.
	if err := c.Warm(context.Background(), f, info, nil); err != nil || f.requests.Load() != 0 {
		t.Fatalf("second warm: %v, %d requests", err, f.requests.Load())
	}
	if err := c.Warm(context.Background(), f, other, nil); err != nil {
		t.Fatal(err)
	}
	es := c.List()
	if len(es) != 2 || es[1].URL != info.URL || es[1].CachedBytes != info.Size || es[1].CachedBlocks != 6 || es[1].Blocks != 6 {
		t.Fatalf("List = %+v", es)
	}
	freed, err := c.Clear(info.URL)
	if err != nil || freed != info.Size {
		t.Fatalf("Clear = %d, %v", freed, err)
	}
	if es := c.List(); len(es) != 1 || es[0].URL != other.URL {
		t.Fatalf("List after Clear(url) = %+v", es)
	}
	if _, err := os.Stat(es[1].Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cleared entry's directory: %v", err)
	}
	// Clear everything, with a handle open: it keeps working.
	h2 := openT(t, c, f, other)
	defer h2.Close()
	if freed, _ := c.Clear(""); freed != other.Size {
		t.Errorf("Clear(\"\") freed %d", freed)
	}
	if s := c.Stats(); s.CachedBytes != 0 {
		t.Errorf("after Clear: %+v", s)
	}
	if !bytes.Equal(readAll(t, h2, other.Size, 100), f.objs["mem://o"].data) {
		t.Error("open handle after Clear")
	}
	h2.Close()
	waitIdle(t, c)
	if s := c.Stats(); s.CachedBytes != 0 || s.Objects != 0 {
		t.Errorf("a cleared object was kept after its handle closed: %+v", s)
	}
	// Too big for the cache.
	big := f.put("mem://big", make([]byte, 9*mib), "e")
	if err := c.Warm(context.Background(), f, big, nil); err == nil {
		t.Error("warming more than the limit: no error")
	}
	// A failing fetch fails the warm.
	f.failErr = remote.ErrPermission
	if err := c.Warm(context.Background(), f, info, nil); !errors.Is(err, remote.ErrPermission) {
		t.Errorf("Warm with a failing store = %v", err)
	}
	f.failErr = nil
	// Cancelled.
	f.gate = make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := c.Warm(ctx, f, info, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled Warm = %v", err)
	}
	close(f.gate)
}

// localish is a store that can open objects in place.
type localish struct{ *fakeStore }

func (localish) OpenReaderAt(ctx context.Context, url string) (remote.ReaderAtCloser, error) {
	return os.Open(url)
}

func TestLocalStoresGoDirect(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("hello"), 0o600)
	c := newTestCache(t, Options{})
	r, err := c.Open(context.Background(), localish{newFake()}, remote.ObjectInfo{URL: p, Size: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok := r.(*os.File); !ok {
		t.Errorf("local store opened as %T", r)
	}
}

func TestClosedCache(t *testing.T) {
	f := newFake()
	info := f.put("mem://z", randBytes(20, 100), "e")
	c := newTestCache(t, Options{})
	h := openT(t, c, f, info)
	c.Close()
	if _, err := h.ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrClosed) {
		t.Errorf("read after Close: %v", err)
	}
	h.Close()
	if _, err := c.Open(context.Background(), f, info); !errors.Is(err, ErrClosed) {
		t.Errorf("Open after Close: %v", err)
	}
}

func TestResolveDir(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	home := func() (string, error) { return "/home/u", nil }
	check := func(flag, want string) {
		t.Helper()
		got, err := resolveDir(flag, getenv, home)
		if err != nil || got != want {
			t.Errorf("resolveDir(%q) with %v = %q, %v; want %q", flag, env, got, err, want)
		}
	}
	check("", "/home/u/.cache/intakefs")
	env["XDG_CACHE_HOME"] = "relative"
	check("", "/home/u/.cache/intakefs")
	env["XDG_CACHE_HOME"] = "/xdg"
	check("", "/xdg/intakefs")
	env[EnvCacheDir] = "/env"
	check("", "/env")
	check("/flag", "/flag")
	wd, _ := os.Getwd()
	check("rel", filepath.Join(wd, "rel"))
	env = map[string]string{}
	if _, err := resolveDir("", getenv, func() (string, error) { return "", errors.New("no home") }); err == nil {
		t.Error("no home: no error")
	}
}

func TestRecordRoundTrip(t *testing.T) {
	r := encodeRecord(7, 1234, 0xdeadbeef)
	if n, crc, ok := decodeRecord(r[:], 7); !ok || n != 1234 || crc != 0xdeadbeef {
		t.Errorf("decode = %d %x %v", n, crc, ok)
	}
	if _, _, ok := decodeRecord(r[:], 8); ok {
		t.Error("a record moved to another block decodes")
	}
	for i := range r {
		x := r
		x[i] ^= 1
		if _, _, ok := decodeRecord(x[:], 7); ok {
			t.Errorf("record with byte %d flipped decodes", i)
		}
	}
	var zero [recordSize]byte
	if _, _, ok := decodeRecord(zero[:], 0); ok {
		t.Error("zero record decodes")
	}
}

func TestDataFileReplacedWhileRunning(t *testing.T) {
	// Blocks this process wrote are trusted without a check only while
	// their data file is the one it wrote: a deleted file is noticed.
	bs := int64(16 * kib)
	f := newFake()
	data := randBytes(21, int(5*bs))
	info := f.put("mem://rm", data, "e")
	c := newTestCache(t, Options{BlockSize: bs})
	h := openT(t, c, f, info)
	readAll(t, h, info.Size, int(bs))
	h.Close() // the last user: files closed
	waitIdle(t, c)
	os.Remove(filepath.Join(objectDir(c.root, keyOf(info.URL, info.Identity(), info.Size)), dataName))
	f.resetLog()
	h2 := openT(t, c, f, info)
	defer h2.Close()
	if !bytes.Equal(readAll(t, h2, info.Size, int(bs)), data) {
		t.Fatal("served the bytes of a deleted file")
	}
	if s := c.Stats(); s.CorruptBlocks != 5 || f.requests.Load() != 5 {
		t.Errorf("stats %+v, %d requests", s, f.requests.Load())
	}
	h2.Close()
	waitIdle(t, c)
	// Truncated behind its back.
	os.Truncate(filepath.Join(objectDir(c.root, keyOf(info.URL, info.Identity(), info.Size)), dataName), 2*bs+5)
	h3 := openT(t, c, f, info)
	defer h3.Close()
	if !bytes.Equal(readAll(t, h3, info.Size, int(bs)), data) {
		t.Fatal("served the bytes of a truncated file")
	}
	if s := c.Stats(); s.CorruptBlocks != 5+3 {
		t.Errorf("stats %+v", s)
	}
}

func TestReadaheadOff(t *testing.T) {
	f := newFake()
	data := randBytes(22, 8*mib)
	info := f.put("mem://off", data, "e")
	c := newTestCache(t, Options{ReadaheadMax: -1})
	h := openT(t, c, f, info)
	defer h.Close()
	if !bytes.Equal(readAll(t, h, info.Size, 128*kib), data) {
		t.Fatal("differs")
	}
	waitIdle(t, c)
	// One request per read (its two blocks), each byte once.
	if s := c.Stats(); s.PrefetchRequests != 0 || s.RemoteRequests != 64 || s.RemoteBytes != info.Size {
		t.Errorf("readahead off: %+v", s)
	}
}

func TestUnknownSize(t *testing.T) {
	c := newTestCache(t, Options{})
	if _, err := c.Open(context.Background(), newFake(), remote.ObjectInfo{URL: "mem://u", Size: -1}); err == nil {
		t.Error("Open of an object of unknown size: no error")
	}
}

// scheduledEnd is the end of the furthest block of h's object that is
// cached or being fetched.
func scheduledEnd(c *Cache, h *handle) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var end int64
	for i, b := range h.o.blocks {
		if b != nil {
			end = max(end, i*c.bs+b.n)
		}
	}
	for k, f := range c.flights {
		if k.o == h.o {
			end = max(end, k.idx*c.bs+f.n)
		}
	}
	return end
}

// Data kept beside the blocks (SetBeside) counts against MaxBytes, and
// Release evicts unread blocks to make room for it.
func TestBesideAndRelease(t *testing.T) {
	bs := int64(64 * kib)
	c := newTestCache(t, Options{BlockSize: bs, MaxBytes: 20 * bs, MinFreeBytes: -1, ReadaheadMax: -1})
	f := newFake()
	data := randBytes(21, int(16*bs))
	info := f.put("mem://beside", data, "e")
	h := openT(t, c, f, info)
	if !bytes.Equal(readAll(t, h, info.Size, int(bs)), data) {
		t.Fatal("differs")
	}
	h.Close()
	waitIdle(t, c)
	if s := c.Stats(); s.CachedBytes != 16*bs {
		t.Fatalf("cached %d, want %d", s.CachedBytes, 16*bs)
	}
	// 8 blocks' worth kept beside: 4 blocks must go.
	if freed := c.Release(8 * bs); freed != 4*bs {
		t.Errorf("Release freed %d, want %d", freed, 4*bs)
	}
	c.SetBeside(8 * bs)
	if s := c.Stats(); s.CachedBytes != 12*bs {
		t.Errorf("after Release: cached %d, want %d", s.CachedBytes, 12*bs)
	}
	// New blocks now fit only in what the beside data leaves.
	other := f.put("mem://beside2", randBytes(22, int(4*bs)), "e")
	h2 := openT(t, c, f, other)
	defer h2.Close()
	readAll(t, h2, other.Size, int(bs))
	waitIdle(t, c)
	if s := c.Stats(); s.CachedBytes+8*bs > 20*bs {
		t.Errorf("blocks %d + beside %d exceed MaxBytes %d", s.CachedBytes, 8*bs, 20*bs)
	}
}
