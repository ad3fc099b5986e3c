package cache

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rangeLog is an HTTP server's record of the Range headers it was sent.
type rangeLog struct {
	mu     sync.Mutex
	ranges [][2]int64 // offset, length
}

func (l *rangeLog) add(h string) {
	var a, b int64
	h = strings.TrimPrefix(h, "bytes=")
	if i := strings.IndexByte(h, '-'); i > 0 {
		a, _ = strconv.ParseInt(h[:i], 10, 64)
		b, _ = strconv.ParseInt(h[i+1:], 10, 64)
	}
	l.mu.Lock()
	l.ranges = append(l.ranges, [2]int64{a, b - a + 1})
	l.mu.Unlock()
}

func (l *rangeLog) get() [][2]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][2]int64(nil), l.ranges...)
}

// TestSequentialFetchSize reads an object sequentially over real HTTP, as
// the kernel sends FUSE reads (1 MiB each), and counts the GETs: readahead
// must ask for large ranges (up to FetchMax), not one block per request,
// and still fetch each byte once.
func TestSequentialFetchSize(t *testing.T) {
	data := randBytes(60, 96*mib)
	var log rangeLog
	srv := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			log.add(r.Header.Get("Range"))
		}
		w.Header().Set("ETag", `"s"`)
		http.ServeContent(w, r, "o", time.Unix(1, 0), bytes.NewReader(data))
	}))
	st := httpStore{client: srv.Client()}
	info, err := st.Stat(context.Background(), srv.URL+"/o")
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCache(t, Options{})
	h := openT(t, c, st, info)
	if !bytes.Equal(readAll(t, h, info.Size, mib), data) {
		t.Fatal("differs")
	}
	h.Close()
	waitIdle(t, c)

	rs := log.get()
	var total, longest int64
	for _, r := range rs {
		total += r[1]
		longest = max(longest, r[1])
		if r[1] > DefaultFetchMax || r[0]%c.bs != 0 {
			t.Errorf("GET of [%d, +%d): not whole blocks, or longer than %d", r[0], r[1], DefaultFetchMax)
		}
	}
	if total != info.Size {
		t.Errorf("GETs asked for %d bytes, the object has %d", total, info.Size)
	}
	// 2 MiB of 1 MiB demand reads before the stream counts as sequential,
	// then windows growing to 64 MiB, fetched 16 MiB at a time: about 15
	// requests; 1,536 with a request per block.
	if len(rs) > 24 || longest != DefaultFetchMax {
		t.Errorf("%d GETs for %d MiB, the longest %d bytes", len(rs), info.Size/mib, longest)
	}
	if s := c.Stats(); s.RemoteRequests != int64(len(rs)) || s.RemoteBytes != info.Size {
		t.Errorf("stats %+v", s)
	}
}

// TestKernelPiecesDoNotSetOffReadahead reads Parquet-style column chunks
// (1.1 MB each, far apart) the way they reach the cache through FUSE: cut
// into the kernel's pieces (128 KiB, its readahead size on a FUSE mount;
// 512 KiB where someone raised it), plus the kernel's own readahead of one
// piece past the chunk's end. The cache must fetch those ranges rounded
// out to its blocks, and nothing more.
func TestKernelPiecesDoNotSetOffReadahead(t *testing.T) {
	for _, piece := range []int64{128 * kib, 512 * kib} {
		t.Run(strconv.FormatInt(piece/kib, 10)+"KiB", func(t *testing.T) {
			f := newFake()
			size := int64(64 * mib)
			data := randBytes(61, int(size))
			info := f.put("mem://pq", data, "e")
			c := newTestCache(t, Options{})
			h := openT(t, c, f, info)
			defer h.Close()
			var ranges [][2]int64
			for k := int64(0); k < 12; k++ {
				start := k*5*mib + 12345*k + 777
				n := int64(1100000)
				end := start + n + piece // what the kernel reads ahead
				ranges = append(ranges, [2]int64{start, end - start})
				for off := start; off < end; off += piece {
					m := min(piece, end-off)
					buf := make([]byte, m)
					if _, err := h.ReadAt(buf, off); err != nil || !bytes.Equal(buf, data[off:off+m]) {
						t.Fatal(err)
					}
				}
			}
			waitIdle(t, c)
			s := c.Stats()
			need := touched(ranges, c.bs, size)
			if s.RemoteBytes > need || s.PrefetchRequests != 0 {
				t.Errorf("fetched %d bytes with %d prefetches; the pieces need %d (rounded to %d-byte blocks)",
					s.RemoteBytes, s.PrefetchRequests, need, c.bs)
			}
			var exact int64
			for _, r := range ranges {
				exact += r[1]
			}
			t.Logf("fetched %d bytes for %d bytes read (%.3f×)", s.RemoteBytes, exact, float64(s.RemoteBytes)/float64(exact))
		})
	}
}

// TestRunStreamsToReaders checks that a reader waiting for the first
// block of a long run gets it before the run's last bytes have arrived.
func TestRunStreamsToReaders(t *testing.T) {
	bs := int64(64 * kib)
	data := randBytes(62, int(16*bs))
	release := make(chan struct{})
	first := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"r"`)
		if r.Method != http.MethodGet {
			http.ServeContent(w, r, "o", time.Unix(1, 0), bytes.NewReader(data))
			return
		}
		// Send the first block, then hold the rest back.
		w.Header().Set("Content-Range", "bytes 0-"+strconv.Itoa(len(data)-1)+"/"+strconv.Itoa(len(data)))
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(data[:bs])
		w.(http.Flusher).Flush()
		close(first)
		<-release
		w.Write(data[bs:])
	}))
	defer srv.Close()
	defer close(release)
	st := httpStore{client: srv.Client()}
	info, err := st.Stat(context.Background(), srv.URL+"/o")
	if err != nil {
		t.Fatal(err)
	}
	c := newTestCache(t, Options{BlockSize: bs})
	h := openT(t, c, st, info)
	defer h.Close()
	// One read of the whole object: one run of 16 blocks. A second reader
	// of block 0 must not wait for the held-back rest.
	go h.ReadAt(make([]byte, len(data)), 0)
	<-first
	h2 := openT(t, c, st, info)
	defer h2.Close()
	buf := make([]byte, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := h2.ReadAtContext(ctx, buf, 10); err != nil || !bytes.Equal(buf, data[10:110]) {
		t.Fatalf("block 0 while the run's body is held back: %v", err)
	}
}

// TestCleanRestartTrustsBlocks: after a clean Close, the next instance
// trusts the blocks on disk (no check on first read, passthrough at once);
// after an unclean end, or a data file changed in between, it does not.
func TestCleanRestartTrustsBlocks(t *testing.T) {
	f := newFake()
	data := randBytes(63, 3*mib+5)
	info := f.put("mem://clean", data, "e")
	dir := t.TempDir()
	fill := func() {
		c := newTestCache(t, Options{Dir: dir})
		h := openT(t, c, f, info)
		readAll(t, h, info.Size, mib)
		h.Close()
		waitIdle(t, c)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	fill()
	if _, err := os.Stat(filepath.Join(dir, formatDir, cleanName)); err != nil {
		t.Fatalf("no clean file after Close: %v", err)
	}

	before := f.requests.Load()
	c := newTestCache(t, Options{Dir: dir})
	if _, err := os.Stat(filepath.Join(dir, formatDir, cleanName)); !os.IsNotExist(err) {
		t.Fatalf("the clean file outlived the start: %v", err)
	}
	h := openT(t, c, f, info)
	lf := h.LocalFile()
	if lf == nil {
		t.Fatal("a fully cached object after a clean restart gives no local file")
	}
	got, err := io.ReadAll(io.NewSectionReader(lf, 0, info.Size))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the local file differs from the object: %v", err)
	}
	if h.LocalFile() != lf {
		t.Error("a second LocalFile gave another file")
	}
	// Pinned while the handle is open: neither Clear nor the size limit
	// takes a byte of it.
	if _, err := c.Clear(""); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.CachedBytes != info.Size || s.PassthroughOpens != 1 || f.requests.Load() != before {
		t.Errorf("after Clear with the local file in use: %+v", s)
	}
	got, _ = io.ReadAll(io.NewSectionReader(lf, 0, info.Size))
	if !bytes.Equal(got, data) {
		t.Fatal("the local file changed under its reader")
	}
	h.Close()
	if _, err := lf.Stat(); err == nil {
		t.Error("the local file is still open after Close")
	}
	// Cleared while in use: deleted when its last handle closed.
	if s := c.Stats(); s.CachedBytes != 0 || s.Objects != 0 {
		t.Errorf("the cleared object outlived its handle: %+v", s)
	}
	c.Close()

	// A data file edited between runs (same size, one byte): not trusted,
	// the bad block is fetched again.
	fill()
	c2 := newTestCache(t, Options{Dir: dir})
	es := c2.List()
	if len(es) != 1 {
		t.Fatalf("List = %+v", es)
	}
	df, err := os.OpenFile(filepath.Join(es[0].Dir, dataName), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	df.WriteAt([]byte{data[mib+7] ^ 0xff}, mib+7)
	df.Close()
	f.resetLog()
	c3 := newTestCache(t, Options{Dir: dir})
	h3 := openT(t, c3, f, info)
	if h3.LocalFile() != nil {
		t.Error("an object edited between runs was handed out unchecked")
	}
	if !bytes.Equal(readAll(t, h3, info.Size, mib), data) {
		t.Fatal("edited object read wrong")
	}
	waitIdle(t, c3)
	if s := c3.Stats(); s.CorruptBlocks != 1 || s.RemoteBytes != c3.bs {
		t.Errorf("after an edit between runs: %+v", s)
	}
	// Every block is now verified: passthrough.
	h4 := openT(t, c3, f, info)
	if h4.LocalFile() == nil {
		t.Error("no local file once every block was checked")
	}
	h4.Close()
	h3.Close()
}

// TestNoLocalFileWhilePartial: an object not wholly cached is read
// through the cache, never handed out.
func TestNoLocalFileWhilePartial(t *testing.T) {
	f := newFake()
	data := randBytes(64, 2*mib)
	info := f.put("mem://part", data, "e")
	c := newTestCache(t, Options{})
	h := openT(t, c, f, info)
	defer h.Close()
	h.ReadAt(make([]byte, 1000), 0)
	waitIdle(t, c)
	if h.LocalFile() != nil {
		t.Fatal("a partly cached object gave a local file")
	}
	readAll(t, h, info.Size, 256*kib)
	waitIdle(t, c)
	if h.LocalFile() == nil {
		t.Fatal("no local file once the object is cached")
	}
}
