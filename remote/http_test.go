package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fileServer serves dir. honourRange: http.ServeContent with an ETag (a
// well-behaved server). Otherwise: HEAD is refused with 405 and GET ignores
// Range, sending the whole file with status 200 and only Last-Modified.
func fileServer(t *testing.T, dir string, honourRange bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(r.URL.Path, "/")))
		f, err := os.Open(p)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || fi.IsDir() {
			http.NotFound(w, r)
			return
		}
		if honourRange {
			w.Header().Set("ETag", fmt.Sprintf(`"%x-%x"`, fi.ModTime().UnixNano(), fi.Size()))
			http.ServeContent(w, r, "", fi.ModTime(), f)
			return
		}
		if r.Method == http.MethodHead {
			http.Error(w, "no HEAD here", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Last-Modified", fi.ModTime().UTC().Format(http.TimeFormat))
		w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
		w.WriteHeader(http.StatusOK)
		io.Copy(w, f)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPConformance(t *testing.T) {
	dir := t.TempDir()
	srv := fileServer(t, dir, true)
	runConformance(t, NewHTTP(HTTPOptions{}), srv.URL, dirPut(t, dir), confOpts{noList: true, noDirStat: true})
}

func TestHTTPConformanceIgnoresRange(t *testing.T) {
	dir := t.TempDir()
	srv := fileServer(t, dir, false)
	runConformance(t, NewHTTP(HTTPOptions{}), srv.URL, dirPut(t, dir), confOpts{noList: true, noDirStat: true})
}

func TestHTTPConformanceWithRetry(t *testing.T) {
	dir := t.TempDir()
	srv := fileServer(t, dir, true)
	s := WithRetry(NewHTTP(HTTPOptions{}), RetryPolicy{})
	runConformance(t, s, srv.URL, dirPut(t, dir), confOpts{noList: true, noDirStat: true})
}

func TestHTTPStatusMapping(t *testing.T) {
	var heads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			heads.Add(1)
		}
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		w.WriteHeader(code)
	}))
	defer srv.Close()
	h := NewHTTP(HTTPOptions{})
	ctx := context.Background()
	cases := []struct {
		code int
		kind error
	}{
		{404, ErrNotExist}, {410, ErrNotExist}, {401, ErrPermission}, {403, ErrPermission},
		{500, ErrUnavailable}, {502, ErrUnavailable}, {503, ErrUnavailable}, {429, ErrUnavailable},
		{400, nil}, {418, nil},
	}
	for _, c := range cases {
		url := fmt.Sprintf("%s/%d", srv.URL, c.code)
		_, serr := h.Stat(ctx, url)
		_, rerr := h.ReadRange(ctx, url, 0, 10)
		for _, err := range []error{serr, rerr} {
			if err == nil {
				t.Errorf("%d: no error", c.code)
				continue
			}
			if !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), strconv.Itoa(c.code)) {
				t.Errorf("%d: message lacks URL or status: %v", c.code, err)
			}
			for _, k := range []error{ErrNotExist, ErrPermission, ErrUnavailable} {
				if errors.Is(err, k) != (k == c.kind) {
					t.Errorf("%d: errors.Is(%v, %v) = %v", c.code, err, k, !(k == c.kind))
				}
			}
			if IsRetryable(err) != (c.kind == ErrUnavailable) {
				t.Errorf("%d: IsRetryable = %v", c.code, IsRetryable(err))
			}
		}
	}
	if heads.Load() == 0 {
		t.Error("Stat never sent HEAD")
	}
}

// Stat on a server that answers HEAD without a size, and on one whose HEAD
// is forbidden (a presigned GET URL) but whose GET works.
func TestHTTPStatFallbacks(t *testing.T) {
	content := "0123456789"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/forbidden-head" && r.Method == http.MethodHead:
			w.WriteHeader(http.StatusForbidden)
			return
		case r.URL.Path == "/no-size" && r.Method == http.MethodHead:
			w.Header().Set("Transfer-Encoding", "chunked")
			w.WriteHeader(http.StatusOK)
			return
		case r.URL.Path == "/no-size-at-all":
			// chunked, never a length, ignores Range
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusOK)
			if r.Method == http.MethodGet {
				w.Write([]byte(content))
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "", time.Unix(1e9, 0), strings.NewReader(content))
	}))
	defer srv.Close()
	h := NewHTTP(HTTPOptions{})
	for _, p := range []string{"/forbidden-head", "/no-size"} {
		info, err := h.Stat(context.Background(), srv.URL+p)
		if err != nil || info.Size != 10 || info.ETag != `"v1"` {
			t.Errorf("Stat %s = %+v, %v", p, info, err)
		}
	}
	info, err := h.Stat(context.Background(), srv.URL+"/no-size-at-all")
	if err != nil || info.Size != -1 || info.ETag != `"v1"` {
		t.Errorf("Stat of a size-less resource = %+v, %v; want Size -1", info, err)
	}
	if got := readAll(t, context.Background(), h, srv.URL+"/no-size-at-all", 3, 4); string(got) != "3456" {
		t.Errorf("read = %q", got)
	}
}

func TestHTTPHeadersAndRedaction(t *testing.T) {
	const bearer = "Bearer tok-very-secret-42"
	var sawAuth atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == bearer {
			sawAuth.Store(true)
		}
		if r.Header.Get("Accept-Encoding") != "identity" {
			t.Errorf("Accept-Encoding = %q", r.Header.Get("Accept-Encoding"))
		}
		w.WriteHeader(http.StatusForbidden)
	}))
	defer srv.Close()
	s, err := Open("https", map[string]any{"headers": map[string]any{"Authorization": bearer}})
	if err != nil {
		t.Fatal(err)
	}
	hostport := strings.TrimPrefix(srv.URL, "http://")
	url := "http://alice:pa55word-xyz@" + hostport + "/data.csv?token=query-secret-1&X-Amz-Signature=sig-secret-2&ok=visible"
	_, err = s.Stat(context.Background(), url)
	if !errors.Is(err, ErrPermission) {
		t.Fatalf("want ErrPermission, got %v", err)
	}
	if !sawAuth.Load() {
		t.Error("headers option not sent")
	}
	msg := err.Error()
	for _, secret := range []string{"pa55word-xyz", "alice", "query-secret-1", "sig-secret-2", "tok-very-secret-42"} {
		if strings.Contains(msg, secret) {
			t.Errorf("message leaks %q: %s", secret, msg)
		}
	}
	if !strings.Contains(msg, hostport+"/data.csv") || !strings.Contains(msg, "ok=visible") {
		t.Errorf("message no longer names the object: %s", msg)
	}
	// Connection refused, with credentials in the URL.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err = s.Stat(context.Background(), "http://bob:hunter2-pw@"+addr+"/x?sig=zzzsig")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("connection refused: want ErrUnavailable, got %v", err)
	}
	for _, secret := range []string{"hunter2-pw", "zzzsig"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("message leaks %q: %v", secret, err)
		}
	}
}

func TestHTTPListNotSupported(t *testing.T) {
	_, err := NewHTTP(HTTPOptions{}).List(context.Background(), "https://example.invalid/dir")
	if !errors.Is(err, ErrNotSupported) || IsRetryable(err) {
		t.Fatalf("List: %v", err)
	}
}

// blackHole accepts connections and never answers; it counts them.
func blackHole(t *testing.T) (addr string, accepted *atomic.Int32) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = new(atomic.Int32)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String(), accepted
}

func TestHTTPBlackHoleTimesOut(t *testing.T) {
	addr, accepted := blackHole(t)
	h := NewHTTP(HTTPOptions{Timeouts: Timeouts{Request: 300 * time.Millisecond}})
	url := "http://" + addr + "/x.csv"
	for name, op := range map[string]func() error{
		"stat": func() error { _, err := h.Stat(context.Background(), url); return err },
		"read": func() error { _, err := h.ReadRange(context.Background(), url, 0, 10); return err },
	} {
		start := time.Now()
		err := op()
		el := time.Since(start)
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: want ErrUnavailable, got %v", name, err)
		}
		if el > 3*time.Second {
			t.Errorf("%s took %v", name, el)
		}
		if !strings.Contains(err.Error(), "timed out") && !strings.Contains(err.Error(), "timeout") {
			t.Errorf("%s: message does not say it timed out: %v", name, err)
		}
	}

	// With retries: exactly MaxAttempts connections, bounded time.
	accepted.Store(0)
	var retries atomic.Int32
	rs := WithRetry(h, RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		OnRetry: func(op, url string, attempt int, err error) { retries.Add(1) }})
	start := time.Now()
	_, err := rs.Stat(context.Background(), url)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("retried stat took %v", el)
	}
	if retries.Load() != 2 {
		t.Errorf("retries = %d, want 2", retries.Load())
	}
	time.Sleep(50 * time.Millisecond)
	if n := accepted.Load(); n != 3 {
		t.Errorf("connections = %d, want 3", n)
	}
	if !strings.Contains(err.Error(), "3 attempts") {
		t.Errorf("message does not count attempts: %v", err)
	}

	// The overall deadline wins over the attempt count.
	rs = WithRetry(h, RetryPolicy{MaxAttempts: 100, InitialBackoff: 10 * time.Millisecond, MaxElapsed: time.Second})
	start = time.Now()
	_, err = rs.ReadRange(context.Background(), url, 0, 10)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
	if el := time.Since(start); el > 2500*time.Millisecond || el < 900*time.Millisecond {
		t.Errorf("deadline-bound read took %v, want about 1s", el)
	}
}

// A server that sends part of a body and then stalls or dies.
func TestHTTPMidBodyFailures(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		w.Write(make([]byte, 100))
		w.(http.Flusher).Flush()
		switch r.URL.Path {
		case "/stall":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/die":
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
		}
	}))
	defer srv.Close()
	h := NewHTTP(HTTPOptions{Timeouts: Timeouts{Request: time.Second, Idle: 300 * time.Millisecond}})
	s := WithRetry(h, RetryPolicy{MaxAttempts: 4, InitialBackoff: 10 * time.Millisecond})
	for _, p := range []string{"/stall", "/die"} {
		requests.Store(0)
		start := time.Now()
		rc, err := s.ReadRange(context.Background(), srv.URL+p, 0, -1)
		if err != nil {
			t.Fatalf("%s: open: %v", p, err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: mid-body error = %v, want ErrUnavailable", p, err)
		}
		if n != 100 {
			t.Errorf("%s: got %d bytes before the failure, want 100", p, n)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("%s took %v", p, el)
		}
		if r := requests.Load(); r != 1 {
			t.Errorf("%s: %d requests; a mid-body failure must not be retried", p, r)
		}
		if err != nil && !strings.Contains(err.Error(), srv.URL+p) {
			t.Errorf("%s: message does not name the URL: %v", p, err)
		}
	}
}

// A slow reader is not cut off by the idle timeout: the clock runs only
// while the caller waits in Read.
func TestHTTPSlowReaderNotCutOff(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(strings.Repeat("x", 64<<10)))
	}))
	defer srv.Close()
	h := NewHTTP(HTTPOptions{Timeouts: Timeouts{Idle: 100 * time.Millisecond}})
	rc, err := h.ReadRange(context.Background(), srv.URL+"/x", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	rest, err := io.ReadAll(rc)
	if err != nil || len(rest) != 64<<10-1000 {
		t.Fatalf("after a pause: %d bytes, %v", len(rest), err)
	}
}

func TestHTTPCallerCancel(t *testing.T) {
	addr, _ := blackHole(t)
	h := WithRetry(NewHTTP(HTTPOptions{}), RetryPolicy{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := h.Stat(ctx, "http://"+addr+"/x")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("want context.Canceled, got %v", err)
	}
	if IsRetryable(err) {
		t.Errorf("a cancelled call is retryable: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("cancel took %v to take effect", el)
	}
}

// A signed URL's query string is no glob pattern.
func TestGlobHTTPQueryIsNoPattern(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("X-Amz-Signature") != "s" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader("abc"))
	}))
	defer srv.Close()
	got, err := Glob(context.Background(), NewHTTP(HTTPOptions{}), srv.URL+"/o.csv?X-Amz-Signature=s")
	if err != nil || len(got) != 1 || got[0].Size != 3 {
		t.Errorf("Glob = %v, %v", got, err)
	}
}

// dripServer answers HEAD normally and GET with its headers and then one
// byte every tick, never faster than the idle timeout would catch, until
// the client goes away. active counts the GET handlers still running.
func dripServer(t *testing.T, size int, tick time.Duration) (srv *httptest.Server, active *atomic.Int32) {
	t.Helper()
	return chunkServer(t, size, 1, tick)
}

// chunkServer is dripServer sending chunk bytes every tick.
func chunkServer(t *testing.T, size, chunk int, tick time.Duration) (srv *httptest.Server, active *atomic.Int32) {
	t.Helper()
	active = new(atomic.Int32)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"drip"`)
		w.Header().Set("Content-Length", strconv.Itoa(size))
		if r.Method == http.MethodHead {
			return
		}
		active.Add(1)
		defer active.Add(-1)
		w.WriteHeader(http.StatusOK)
		fl := w.(http.Flusher)
		fl.Flush()
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for left := size; left > 0; left -= chunk {
			select {
			case <-r.Context().Done():
				return
			case <-tk.C:
			}
			if _, err := w.Write(bytes.Repeat([]byte{'d'}, min(chunk, left))); err != nil {
				return
			}
			fl.Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv, active
}

// A body that keeps dripping a byte at a time never trips the idle
// timeout; MaxElapsed bounds the whole read, the body included. The read
// fails (ErrUnavailable, ErrTimeBound; never the caller's cancellation)
// within about the bound, the message names the URL without its secrets
// and says the bound elapsed, and Close leaves no request behind on
// either side.
func TestHTTPDripBoundedByMaxElapsed(t *testing.T) {
	const bound = time.Second
	srv, active := dripServer(t, 100000, 100*time.Millisecond)
	url := srv.URL + "/drip.csv?token=drip-secret-5d1f"
	h := NewHTTP(HTTPOptions{Timeouts: Timeouts{Request: time.Second, Idle: 500 * time.Millisecond}})
	s := WithRetry(h, RetryPolicy{MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond, MaxElapsed: bound})
	info, err := s.Stat(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	opens := map[string]func() (io.ReadCloser, error){
		"ReadRange": func() (io.ReadCloser, error) { return s.ReadRange(context.Background(), url, 0, -1) },
		"ReadVersion": func() (io.ReadCloser, error) {
			return ReadVersion(context.Background(), s, info, 0, 50000)
		},
	}
	for name, open := range opens {
		start := time.Now()
		rc, err := open()
		if err != nil {
			t.Fatalf("%s: open: %v", name, err)
		}
		n, err := io.Copy(io.Discard, rc)
		took := time.Since(start)
		rc.Close()
		t.Logf("%s: %d bytes, then %v, after %v", name, n, err, took.Round(time.Millisecond))
		if err == nil {
			t.Fatalf("%s: a dripping body read to its end without an error", name)
		}
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrTimeBound) || errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v; want ErrUnavailable and ErrTimeBound", name, err)
		}
		if n < 3 {
			t.Errorf("%s: only %d bytes dripped: the idle timeout, not the bound, ended the read", name, n)
		}
		if took < bound*9/10 || took > bound+5*time.Second {
			t.Errorf("%s: failed after %v, want about %v", name, took, bound)
		}
		msg := err.Error()
		if !strings.Contains(msg, srv.URL+"/drip.csv") || strings.Contains(msg, "drip-secret-5d1f") ||
			!strings.Contains(msg, "time bound") {
			t.Errorf("%s: message must name the redacted URL and the time bound: %s", name, msg)
		}
		deadline := time.Now().Add(5 * time.Second)
		for active.Load() != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if a := active.Load(); a != 0 {
			t.Errorf("%s: %d requests still being served after Close", name, a)
		}
	}
}

// A slow link is not a dripping server: a body that takes several times
// MaxElapsed but delivers 64 KiB well within each bound reads to its end.
func TestHTTPSlowBodyWithinBound(t *testing.T) {
	const bound = time.Second
	const size = 512 << 10
	// 32 KiB every 250 ms: 128 KiB/s, 4 s for the whole body
	srv, _ := chunkServer(t, size, 32<<10, 250*time.Millisecond)
	h := NewHTTP(HTTPOptions{Timeouts: Timeouts{Request: time.Second, Idle: 2 * time.Second}})
	s := WithRetry(h, RetryPolicy{MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond, MaxElapsed: bound})
	start := time.Now()
	rc, err := s.ReadRange(context.Background(), srv.URL+"/slow.csv", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	took := time.Since(start)
	if err != nil || n != size {
		t.Fatalf("read %d of %d bytes in %v: %v; want all of it", n, size, took, err)
	}
	if took < 2*bound {
		t.Fatalf("the body took %v: not slow enough to show anything about a %v bound", took, bound)
	}
}
