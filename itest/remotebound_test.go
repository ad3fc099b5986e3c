package itest

// Two ways an HTTP server can misbehave that the retries and timeouts of
// remote_test.go do not cover: one that sends its headers and then drips a
// byte at a time (never pausing long enough for --idle-timeout), and one
// that ignores If-Match and answers a read of an old version with the
// object it has now.

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// retryMaxTime is --retry-max-time in boundedFlags.
const retryMaxTime = 3 * time.Second

// TestRemoteDrippingServer: a source whose server drips its body. `cat`
// gets EIO once --retry-max-time has elapsed (not after the hours the
// drip would take), the log names the URL, without its password, and the
// bound, the daemon lets go of the connection, and the mount keeps serving
// other files, from the same server and from local disk.
func TestRemoteDrippingServer(t *testing.T) {
	needVega(t)
	remoteEnv(t)
	stocks, err := os.ReadFile(vega("data/stocks.csv"))
	if err != nil {
		t.Fatal(err)
	}
	// The first fastSize bytes come at once (what planning the file and
	// the first blocks need), the rest a byte at a time.
	const dripSize, fastSize = 1 << 20, 128 << 10
	modTime := time.Now().Add(-time.Hour).Truncate(time.Second)
	var dripping, dripped atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stocks.csv":
			http.ServeContent(w, r, "stocks.csv", modTime, bytes.NewReader(stocks))
			return
		case "/drip.txt":
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", `"drip-1"`)
		w.Header().Set("Last-Modified", modTime.UTC().Format(http.TimeFormat))
		start, end := int64(0), int64(dripSize-1)
		if rng := r.Header.Get("Range"); rng != "" {
			a, b, _ := strings.Cut(strings.TrimPrefix(rng, "bytes="), "-")
			start, _ = strconv.ParseInt(a, 10, 64)
			if b != "" {
				end, _ = strconv.ParseInt(b, 10, 64)
			}
			end = min(end, dripSize-1)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, dripSize))
		}
		w.Header().Set("Content-Length", strconv.FormatInt(end-start+1, 10))
		if r.Method == http.MethodHead {
			return
		}
		if r.Header.Get("Range") != "" {
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.WriteHeader(http.StatusOK)
		}
		fl := w.(http.Flusher)
		pos := start
		if pos < fastSize {
			n := min(end+1, fastSize) - pos
			if _, err := w.Write(bytes.Repeat([]byte{'d'}, int(n))); err != nil {
				return
			}
			pos += n
		}
		fl.Flush()
		if pos > end {
			return
		}
		dripping.Add(1)
		defer dripping.Add(-1)
		// Every 500 ms, well inside the 2 s of --idle-timeout.
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for ; pos <= end; pos++ {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
			if _, err := w.Write([]byte{'d'}); err != nil {
				return
			}
			fl.Flush()
			dripped.Add(1)
		}
	}))
	t.Cleanup(srv.Close)
	const password = "itest-drip-password-3e9a"
	withPassword := strings.Replace(srv.URL, "http://", "http://reader:"+password+"@", 1)
	cat := fmt.Sprintf(`sources:
  drip:
    driver: textfiles
    args: {urlpath: '%[1]s/drip.txt'}
  stocks:
    driver: csv
    args: {urlpath: '%[2]s/stocks.csv'}
  local:
    driver: csv
    args: {urlpath: '%[3]s'}
`, withPassword, srv.URL, vega("data/stocks.csv"))
	catPath := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(catPath, []byte(cat), 0o644); err != nil {
		t.Fatal(err)
	}
	d := mount(t, catPath, boundedFlags...)

	if fi := statFile(t, d.path("drip.txt")); fi.Size() != dripSize {
		t.Fatalf("stat drip.txt: size %d, want %d", fi.Size(), dripSize)
	}
	start := time.Now()
	r := run(t, retryMaxTime+failureBound, "", "cat", d.path("drip.txt"))
	took := time.Since(start)
	t.Logf("cat drip.txt: exit %d after %v, %d bytes printed, %d dripped; stderr: %s",
		r.exitCode, took.Round(time.Millisecond), len(r.stdout), dripped.Load(), strings.TrimSpace(r.stderr))
	if r.exitCode != 1 || !strings.Contains(strings.ToLower(r.stderr), syscall.EIO.Error()) {
		t.Errorf("cat of a dripping source: exit %d, stderr %q; want EIO (%q)", r.exitCode, r.stderr, syscall.EIO.Error())
	}
	if took > retryMaxTime+5*time.Second {
		t.Errorf("cat failed after %v: more than --retry-max-time (%v) and a margin", took, retryMaxTime)
	}
	if len(r.stdout) >= dripSize || strings.Trim(r.stdout, "d") != "" {
		t.Errorf("cat printed %d bytes: want fewer than %d, all of them the object's", len(r.stdout), dripSize)
	}
	if dripped.Load() == 0 {
		t.Errorf("no byte was dripped: the test proves nothing")
	}
	// The daemon hung up: no response is still dripping.
	deadline := time.Now().Add(5 * time.Second)
	for dripping.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := dripping.Load(); n != 0 {
		t.Errorf("%d responses still dripping after the read failed: the daemon kept the connection", n)
	}
	stillServes(t, d, stocks)

	out := d.Output()
	redacted := "http://***@" + strings.TrimPrefix(srv.URL, "http://") + "/drip.txt"
	if !logLineWith(out, redacted, "time bound", retryMaxTime.String()) {
		t.Errorf("no log line names %s and the time bound (%v):\n%s", redacted, retryMaxTime, tail(out, 30))
	}
	checkNoSecrets(t, "the daemon's log", out, []string{password})
}

// swappingServer serves one object, /data.bin, whose version the test
// replaces, and ignores If-Match, as some servers and proxies do: asked
// for a range of an old version, it answers with the bytes it has now.
type swappingServer struct {
	URL     string
	mu      sync.Mutex
	data    []byte
	etag    string
	modTime time.Time
	ifMatch int // GETs that carried If-Match
	gets    int
}

func startSwappingServer(t *testing.T, data []byte, etag string) *swappingServer {
	t.Helper()
	s := &swappingServer{data: data, etag: etag, modTime: time.Now().Add(-time.Hour).Truncate(time.Second)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/data.bin" {
			http.NotFound(w, r)
			return
		}
		s.mu.Lock()
		data, etag, modTime := s.data, s.etag, s.modTime
		if r.Method == http.MethodGet {
			s.gets++
			if r.Header.Get("If-Match") != "" {
				s.ifMatch++
			}
		}
		s.mu.Unlock()
		r.Header.Del("If-Match")
		w.Header().Set("ETag", etag)
		http.ServeContent(w, r, path.Base(r.URL.Path), modTime, bytes.NewReader(data))
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// swap replaces the object, same size, same Last-Modified: only its ETag
// tells the versions apart.
func (s *swappingServer) swap(data []byte, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data, s.etag = data, etag
}

func (s *swappingServer) counts() (gets, ifMatch int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets, s.ifMatch
}

// TestRemoteRewriteIgnoringIfMatch: an object rewritten under an open file
// by a server that ignores If-Match. A read of a part not yet fetched gets
// ESTALE (what the mount answers for data that changed since it was
// opened), never bytes of the new version; a file opened afresh later
// reads the new version whole. Neither read ever mixes the two.
func TestRemoteRewriteIgnoringIfMatch(t *testing.T) {
	remoteEnv(t)
	const size = 8 << 20
	v1 := bytes.Repeat([]byte("version one\n"), size/12+1)[:size]
	v2 := bytes.Repeat([]byte("VERSION TWO\n"), size/12+1)[:size]
	srv := startSwappingServer(t, v1, `"v1"`)
	cat := fmt.Sprintf("sources:\n  data:\n    driver: textfiles\n    args: {urlpath: '%s/data.bin'}\n", srv.URL)
	catPath := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(catPath, []byte(cat), 0o644); err != nil {
		t.Fatal(err)
	}
	d := mount(t, catPath, boundedFlags...)
	name := d.path("data.bin")

	f, err := withTimeout(t, "open data.bin", func() (*os.File, error) { return os.Open(name) })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pread := func(off int64, n int) ([]byte, error) {
		return withTimeout(t, "read data.bin", func() ([]byte, error) {
			b := make([]byte, n)
			m, err := f.ReadAt(b, off)
			return b[:m], err
		})
	}
	head, err := pread(0, 64<<10)
	if err != nil || !bytes.Equal(head, v1[:64<<10]) {
		t.Fatalf("first read of the open file: %d bytes, %v; want version one", len(head), err)
	}
	srv.swap(v2, `"v2"`)
	const far = 5 << 20 // not fetched yet: no readahead reaches it from one 64 KiB read
	got, err := pread(far, 64<<10)
	gets, ifMatch := srv.counts()
	t.Logf("read at %d after the rewrite: %d bytes, %v (%d GETs, %d with If-Match)", far, len(got), err, gets, ifMatch)
	switch {
	case err == nil && bytes.Equal(got, v2[far:far+64<<10]):
		t.Errorf("the open file of version one served bytes of version two: the versions are mixed")
	case err == nil:
		t.Errorf("a read after the rewrite succeeded with bytes of neither version")
	case !errors.Is(err, syscall.ESTALE):
		t.Errorf("read after the rewrite: %v; want ESTALE", err)
	}
	if ifMatch == 0 {
		t.Errorf("no GET carried If-Match: the test proves nothing about a server that ignores it")
	}
	// The part read before the rewrite still reads as it was.
	if again, err := pread(0, 4096); err == nil && !bytes.Equal(again, v1[:4096]) {
		t.Errorf("the start of the open file changed under it")
	}
	f.Close()

	// A fresh open finds the new version, and reads it whole: never a
	// mix, whatever the kernel and the daemon still remember of the old.
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := withTimeout(t, "read data.bin", func() ([]byte, error) { return os.ReadFile(name) })
		if err == nil {
			if !bytes.Equal(b, v2) {
				t.Fatalf("a fresh read after the rewrite: %s", sameBytes(b, v2))
			}
			break
		}
		if !errors.Is(err, syscall.ESTALE) {
			t.Fatalf("a fresh read after the rewrite: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("still ESTALE %v after the rewrite", 30*time.Second)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
