package remote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// swapServer serves one object, /obj, whose version the test replaces,
// and ignores If-Match: asked for an old version, it answers with the
// bytes it has now, as some servers and proxies do.
type swapServer struct {
	*httptest.Server
	mu      sync.Mutex
	data    []byte
	etag    string    // "" sends none
	modTime time.Time // zero sends no Last-Modified
	// ignoreRange answers every GET with the whole object and status 200.
	ignoreRange bool
	ifMatch     int // requests that carried If-Match
}

func startSwapServer(t *testing.T, data []byte, etag string, modTime time.Time, ignoreRange bool) *swapServer {
	t.Helper()
	s := &swapServer{data: data, etag: etag, modTime: modTime, ignoreRange: ignoreRange}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		data, etag, modTime, ignoreRange := s.data, s.etag, s.modTime, s.ignoreRange
		if r.Header.Get("If-Match") != "" {
			s.ifMatch++
		}
		s.mu.Unlock()
		r.Header.Del("If-Match") // what makes this server a bad one
		if etag != "" {
			w.Header().Set("ETag", etag)
		}
		if ignoreRange && r.Method == http.MethodGet {
			if !modTime.IsZero() {
				w.Header().Set("Last-Modified", modTime.UTC().Format(http.TimeFormat))
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.WriteHeader(http.StatusOK)
			w.Write(data)
			return
		}
		http.ServeContent(w, r, "", modTime, bytes.NewReader(data))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *swapServer) swap(data []byte, etag string, modTime time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data, s.etag, s.modTime = data, etag, modTime
}

// A ranged read of a version the server no longer has fails with
// ErrChanged whatever the server does with If-Match, as long as its
// answer shows the change: an ETag or a total size. Never the new bytes.
func TestHTTPReadVersionChecksTheAnswer(t *testing.T) {
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	v1 := []byte(strings.Repeat("1", 4000))
	v2 := []byte(strings.Repeat("2", 4000))
	v2long := []byte(strings.Repeat("2", 5000))
	cases := []struct {
		name        string
		ignoreRange bool
		etag1       string
		mod1        time.Time
		data2       []byte
		etag2       string
		mod2        time.Time
	}{
		{"etag", false, `"v1"`, t0, v2, `"v2"`, t0},
		{"weak-etag", false, `W/"v1"`, t0, v2, `W/"v2"`, t0},
		{"etag-range-ignored", true, `"v1"`, t0, v2, `"v2"`, t0},
		{"no-etag-no-date-size", false, "", time.Time{}, v2long, "", time.Time{}},
		{"no-etag-no-date-size-range-ignored", true, "", time.Time{}, v2long, "", time.Time{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := startSwapServer(t, v1, c.etag1, c.mod1, c.ignoreRange)
			url := srv.URL + "/obj"
			for _, s := range []Store{NewHTTP(HTTPOptions{}), WithRetry(NewHTTP(HTTPOptions{}), RetryPolicy{})} {
				srv.swap(v1, c.etag1, c.mod1)
				ctx := context.Background()
				info, err := s.Stat(ctx, url)
				if err != nil {
					t.Fatal(err)
				}
				if got := readVersion(ctx, s, info, 100, 200); got.err != nil || !bytes.Equal(got.b, v1[100:300]) {
					t.Fatalf("%T: unchanged object: %d bytes, %v", s, len(got.b), got.err)
				}
				srv.swap(c.data2, c.etag2, c.mod2)
				got := readVersion(ctx, s, info, 1000, 200)
				if !errors.Is(got.err, ErrChanged) {
					t.Fatalf("%T: read of the old version after a rewrite: %d bytes (%q…), %v; want ErrChanged",
						s, len(got.b), trunc(got.b), got.err)
				}
				if IsRetryable(got.err) || !strings.Contains(got.err.Error(), url) {
					t.Errorf("%T: error is retryable or does not name the URL: %v", s, got.err)
				}
				// The new version reads as itself.
				info2, err := s.Stat(ctx, url)
				if err != nil {
					t.Fatal(err)
				}
				if got := readVersion(ctx, s, info2, 1000, 200); got.err != nil || !bytes.Equal(got.b, c.data2[1000:1200]) {
					t.Errorf("%T: new version: %d bytes, %v", s, len(got.b), got.err)
				}
			}
		})
	}
}

// A server that sends no ETag and no Last-Modified, and an object that
// did not change: nothing to hold against the answer, so no error.
func TestHTTPReadVersionWithoutIdentity(t *testing.T) {
	data := []byte(strings.Repeat("x", 3000))
	for _, ignoreRange := range []bool{false, true} {
		srv := startSwapServer(t, data, "", time.Time{}, ignoreRange)
		s := NewHTTP(HTTPOptions{})
		info, err := s.Stat(context.Background(), srv.URL+"/obj")
		if err != nil {
			t.Fatal(err)
		}
		if info.ETag != "" || !info.ModTime.IsZero() {
			t.Fatalf("the server sent an identity: %+v", info)
		}
		got := readVersion(context.Background(), s, info, 10, 100)
		if got.err != nil || !bytes.Equal(got.b, data[10:110]) {
			t.Errorf("ignoreRange=%v: %d bytes, %v", ignoreRange, len(got.b), got.err)
		}
		// Nor when the answer has an ETag the stat did not see.
		srv.swap(data, `"late"`, time.Time{})
		if got := readVersion(context.Background(), s, info, 10, 100); got.err != nil {
			t.Errorf("ignoreRange=%v, an ETag only on the read: %v", ignoreRange, got.err)
		}
	}
}

// A server of generated files sends the time of each answer as its
// Last-Modified: that is no change of the object.
func TestHTTPReadVersionLastModifiedOfEachAnswer(t *testing.T) {
	data := []byte(strings.Repeat("x", 3000))
	for _, ignoreRange := range []bool{false, true} {
		t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
		srv := startSwapServer(t, data, "", t0, ignoreRange)
		s := NewHTTP(HTTPOptions{})
		info, err := s.Stat(context.Background(), srv.URL+"/obj")
		if err != nil {
			t.Fatal(err)
		}
		srv.swap(data, "", t0.Add(time.Minute))
		if got := readVersion(context.Background(), s, info, 10, 100); got.err != nil || !bytes.Equal(got.b, data[10:110]) {
			t.Errorf("ignoreRange=%v: %d bytes, %v", ignoreRange, len(got.b), got.err)
		}
	}
}

type readResult struct {
	b   []byte
	err error
}

func readVersion(ctx context.Context, s Store, info ObjectInfo, off, n int64) readResult {
	rc, err := ReadVersion(ctx, s, info, off, n)
	if err != nil {
		return readResult{err: err}
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return readResult{b, err}
}
