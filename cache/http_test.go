package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intakefs/intakefs/remote"
)

// httpStore is a minimal ranged-HTTP Store for this test (remote's own is
// tested in remote/): HEAD for Stat, GET with Range for reads, If-Match for
// ReadVersion.
type httpStore struct{ client *http.Client }

func (s httpStore) Stat(ctx context.Context, url string) (remote.ObjectInfo, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	resp, err := s.client.Do(req)
	if err != nil {
		return remote.ObjectInfo{}, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return remote.ObjectInfo{}, fmt.Errorf("HEAD %s: %s", url, resp.Status)
	}
	mt, _ := http.ParseTime(resp.Header.Get("Last-Modified"))
	return remote.ObjectInfo{URL: url, Size: resp.ContentLength, ModTime: mt, ETag: resp.Header.Get("ETag")}, nil
}

func (s httpStore) List(ctx context.Context, url string) ([]remote.ObjectInfo, error) {
	return nil, remote.ErrNotExist
}

func (s httpStore) ReadRange(ctx context.Context, url string, off, n int64) (io.ReadCloser, error) {
	return s.get(ctx, url, "", off, n)
}

func (s httpStore) ReadVersion(ctx context.Context, info remote.ObjectInfo, off, n int64) (io.ReadCloser, error) {
	return s.get(ctx, info.URL, info.ETag, off, n)
}

var errHTTPChanged = errors.New("412: changed")

func (s httpStore) get(ctx context.Context, url, etag string, off, n int64) (io.ReadCloser, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-"+strconv.FormatInt(off+n-1, 10))
	if etag != "" {
		req.Header.Set("If-Match", etag)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		return resp.Body, nil
	case http.StatusPreconditionFailed:
		resp.Body.Close()
		return nil, errHTTPChanged
	}
	resp.Body.Close()
	return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
}

type served struct {
	mu   sync.Mutex
	data []byte
	etag string
}

func TestOverRealHTTP(t *testing.T) {
	obj := &served{data: randBytes(30, 9*mib+4321), etag: `"v1"`}
	var gets, bytesOut atomic.Int64
	mod := time.Unix(1700000000, 0)
	srv := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		obj.mu.Lock()
		data, etag := obj.data, obj.etag
		obj.mu.Unlock()
		if r.Method == http.MethodGet {
			gets.Add(1)
		}
		w.Header().Set("ETag", etag)
		cw := &countingWriter{ResponseWriter: w, n: &bytesOut}
		http.ServeContent(cw, r, "obj.bin", mod, bytes.NewReader(data))
	}))

	st := httpStore{client: srv.Client()}
	url := srv.URL + "/obj.bin"
	info, err := st.Stat(context.Background(), url)
	if err != nil || info.Size != int64(len(obj.data)) || info.ETag != `"v1"` {
		t.Fatalf("Stat = %+v, %v", info, err)
	}
	dir := t.TempDir()
	c := newTestCache(t, Options{Dir: dir})
	h := openT(t, c, st, info)
	// Random reads, byte-exact.
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		off := r.Int64N(info.Size)
		buf := make([]byte, r.IntN(300*kib)+1)
		n, err := h.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], obj.data[off:off+int64(n)]) {
			t.Fatalf("random read at %d differs", off)
		}
	}
	// A whole sequential read.
	if !bytes.Equal(readAll(t, h, info.Size, 128*kib), obj.data) {
		t.Fatal("sequential read differs")
	}
	h.Close()
	waitIdle(t, c)
	// Each byte fetched once, in at most one GET per block.
	firstGets := gets.Load()
	if nb := (info.Size + c.bs - 1) / c.bs; firstGets > nb || firstGets == 0 {
		t.Errorf("%d GETs for %d blocks", firstGets, nb)
	}
	if s := c.Stats(); s.RemoteBytes != info.Size {
		t.Errorf("fetched %d bytes: %+v", s.RemoteBytes, s)
	}
	c.Close()

	// Another instance on the same directory: no GET at all.
	c2 := newTestCache(t, Options{Dir: dir})
	h2 := openT(t, c2, st, info)
	if !bytes.Equal(readAll(t, h2, info.Size, 1*mib), obj.data) {
		t.Fatal("warm read differs")
	}
	if g := gets.Load(); g != firstGets {
		t.Errorf("warm read made %d GETs", g-firstGets)
	}
	// The server's object changes: the old handle's uncached reads fail
	// (If-Match → 412), a new Stat gives the new bytes.
	c2.Clear("") // h2 is open: its blocks go, it keeps its version
	obj.mu.Lock()
	obj.data = randBytes(31, len(obj.data))
	obj.etag = `"v2"`
	obj.mu.Unlock()
	if _, err := h2.ReadAt(make([]byte, 10), 0); !errors.Is(err, errHTTPChanged) {
		t.Errorf("old version after the change: %v", err)
	}
	h2.Close()
	info2, _ := st.Stat(context.Background(), url)
	h3 := openT(t, c2, st, info2)
	defer h3.Close()
	if !bytes.Equal(readAll(t, h3, info2.Size, 256*kib), obj.data) {
		t.Fatal("new version differs")
	}
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}

// BenchmarkHTTPSequentialCold reads a 256 MiB object over loopback HTTP
// through a cold cache, next to one plain GET of the whole object.
func BenchmarkHTTPSequentialCold(b *testing.B) {
	data := randBytes(40, 256*mib)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"x"`)
		http.ServeContent(w, r, "o", time.Unix(1, 0), bytes.NewReader(data))
	}))
	defer srv.Close()
	// As many idle connections kept as readahead has requests in flight.
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 128
	st := httpStore{client: &http.Client{Transport: tr}}
	url := srv.URL + "/o"
	b.Run("direct-GET", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		buf := make([]byte, 128*kib)
		for b.Loop() {
			resp, err := srv.Client().Get(url)
			if err != nil {
				b.Fatal(err)
			}
			io.CopyBuffer(io.Discard, struct{ io.Reader }{resp.Body}, buf)
			resp.Body.Close()
		}
	})
	b.Run("cache-cold", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			b.StopTimer()
			c, err := New(Options{Dir: b.TempDir(), MinFreeBytes: -1})
			if err != nil {
				b.Fatal(err)
			}
			info, _ := st.Stat(context.Background(), url)
			h := openT(b, c, st, info)
			b.StartTimer()
			seqRead(b, h, info.Size, 128*kib)
			b.StopTimer()
			h.Close()
			c.Close()
			b.StartTimer()
		}
	})
}

// loopbackServer starts h on 127.0.0.1 only (never on every interface),
// closed when the test ends.
func loopbackServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// A server that sends its headers and then drips a byte at a time, over
// remote's HTTP store with retries: a reader of a block gets the bound's
// error within about the bound, and the run does not resume (a
// resumption would share the spent bound), so one GET, and none left
// running once the run has ended. A read of the block right after is
// refused at once.
func TestDripBoundedOverRealHTTP(t *testing.T) {
	const bound = time.Second
	const size = 256 * kib
	var gets, active atomic.Int32
	srv := loopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"drip"`)
		w.Header().Set("Content-Length", strconv.Itoa(size))
		if r.Method != http.MethodGet {
			return
		}
		gets.Add(1)
		active.Add(1)
		defer active.Add(-1)
		w.WriteHeader(http.StatusOK)
		for {
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := w.Write([]byte{'d'}); err != nil {
				return
			}
		}
	}))
	st := remote.WithRetry(remote.NewHTTP(remote.HTTPOptions{Timeouts: remote.Timeouts{Request: time.Second, Idle: 500 * time.Millisecond}}),
		remote.RetryPolicy{MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond, MaxElapsed: bound})
	info, err := st.Stat(context.Background(), srv.URL+"/drip.bin")
	if err != nil || info.Size != size {
		t.Fatalf("Stat = %+v, %v", info, err)
	}
	c := newTestCache(t, Options{})
	h := openT(t, c, st, info)
	defer h.Close()
	start := time.Now()
	n, err := h.ReadAt(make([]byte, 1000), 0)
	took := time.Since(start)
	t.Logf("read: %d bytes, %v, after %v", n, err, took.Round(time.Millisecond))
	if !errors.Is(err, remote.ErrTimeBound) || !errors.Is(err, remote.ErrUnavailable) {
		t.Errorf("read of a dripping block: %v; want the time bound's error", err)
	}
	if took > bound+5*time.Second {
		t.Errorf("the read failed after %v, want about %v", took, bound)
	}
	waitIdle(t, c)
	if g := gets.Load(); g != 1 {
		t.Errorf("%d GETs: a resumption after the bound ran out asked again", g)
	}
	// Asked again at once (as the kernel does), the block is refused
	// without another request; once c.failedFor has passed, it is fetched
	// again.
	start = time.Now()
	_, err = h.ReadAt(make([]byte, 1000), 0)
	if took := time.Since(start); !errors.Is(err, remote.ErrTimeBound) || took > bound/2 || gets.Load() != 1 {
		t.Errorf("read at once after the failure: %v after %v, %d GETs; want the same error at once, no GET", err, took, gets.Load())
	}
	c.mu.Lock()
	c.failedFor = 0
	h.o.failed[0] = blockFailure{err: err, until: time.Now()}
	c.mu.Unlock()
	if _, err = h.ReadAt(make([]byte, 1000), 0); !errors.Is(err, remote.ErrTimeBound) || gets.Load() != 2 {
		t.Errorf("read after the refusal expired: %v, %d GETs; want a new GET and the bound's error", err, gets.Load())
	}
	waitIdle(t, c)
	deadline := time.Now().Add(5 * time.Second)
	for active.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if a := active.Load(); a != 0 {
		t.Errorf("%d GETs still being served after the run ended", a)
	}
}
