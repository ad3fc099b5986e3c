package engine

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intakefs/intakefs/remote"
)

// catServer serves one catalog file, /cat.yaml, from memory, with an ETag
// of its content, and can be made to stall, to refuse connections and to
// recover on the same address.
type catServer struct {
	t    *testing.T
	addr string
	// requests counts the requests for /cat.yaml, stalled ones included.
	requests atomic.Int64

	mu      sync.Mutex
	body    string
	stalled chan struct{} // non-nil: requests block until it is closed
	gone    bool          // every request gets 404
	srv     *http.Server
}

func startCatServer(t *testing.T, body string) *catServer {
	t.Helper()
	s := &catServer{t: t, body: body}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(func() {
		s.unstall()
		s.refuse()
	})
	return s
}

func (s *catServer) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(s.handle)}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go srv.Serve(ln)
}

func (s *catServer) handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/cat.yaml" {
		http.NotFound(w, r)
		return
	}
	s.requests.Add(1)
	s.mu.Lock()
	body, stalled, gone := s.body, s.stalled, s.gone
	s.mu.Unlock()
	if gone {
		http.NotFound(w, r)
		return
	}
	if stalled != nil {
		select {
		case <-stalled:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("ETag", fmt.Sprintf(`"%x"`, sha256.Sum256([]byte(body))))
	http.ServeContent(w, r, "cat.yaml", time.Unix(1_700_000_000, 0), strings.NewReader(body))
}

func (s *catServer) url() string { return "http://" + s.addr + "/cat.yaml" }

func (s *catServer) set(body string) {
	s.mu.Lock()
	s.body = body
	s.mu.Unlock()
}

// stall makes every request wait without an answer until unstall.
func (s *catServer) stall() {
	s.mu.Lock()
	if s.stalled == nil {
		s.stalled = make(chan struct{})
	}
	s.mu.Unlock()
}

func (s *catServer) unstall() {
	s.mu.Lock()
	if s.stalled != nil {
		close(s.stalled)
		s.stalled = nil
	}
	s.mu.Unlock()
}

// refuse closes the listener and every connection: connections are
// refused until recover.
func (s *catServer) refuse() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// recover listens on the same address again.
func (s *catServer) recover() {
	s.t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("listen again on %s: %v", s.addr, err)
	}
	s.serve(ln)
}

// remoteLoader is a Loader for remote catalogs with a short recheck
// interval and tight request bounds: one attempt of at most timeout.
func remoteLoader(t *testing.T, interval, timeout time.Duration) (*Loader, *syncBuf) {
	t.Helper()
	log := &syncBuf{}
	l := NewLoader(t.TempDir())
	l.RemoteRecheckInterval = interval
	l.Log = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l.Resolver = &Resolver{
		Config: remote.Config{Timeouts: remote.Timeouts{Connect: timeout, Request: timeout, Idle: timeout}},
		Retry:  remote.RetryPolicy{MaxAttempts: 1, MaxElapsed: timeout},
	}
	return l, log
}

func catWith(names ...string) string {
	var b strings.Builder
	b.WriteString("sources:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %s: {driver: csv, args: {urlpath: /etc/hostname}}\n", n)
	}
	return b.String()
}

func entryNames(c *Catalog) string {
	if c == nil {
		return "<nil>"
	}
	var out []string
	for _, e := range c.Entries {
		out = append(out, e.Name)
	}
	return strings.Join(out, ",")
}

// mustOpen opens u and fails unless that takes less than within.
func mustOpen(t *testing.T, l *Loader, u string, within time.Duration) *Catalog {
	t.Helper()
	start := time.Now()
	c, err := l.Open(u, nil)
	if took := time.Since(start); took > within {
		t.Errorf("Open took %v, more than %v", took.Round(time.Millisecond), within)
	}
	if err != nil {
		t.Fatalf("Open %s: %v", u, err)
	}
	return c
}

// waitFor polls cond for up to limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRemoteCatalogRecheckInterval: a remote catalog costs no request per
// Open, one per recheck interval, and an edit on the server shows after
// the interval.
func TestRemoteCatalogRecheckInterval(t *testing.T) {
	const interval = 500 * time.Millisecond
	s := startCatServer(t, catWith("a"))
	l, _ := remoteLoader(t, interval, 5*time.Second)

	first := mustOpen(t, l, s.url(), 10*time.Second)
	if got := entryNames(first); got != "a" {
		t.Fatalf("first load: entries %s, want a", got)
	}
	loadRequests := s.requests.Load() // a HEAD and a GET
	if loadRequests < 1 || loadRequests > 3 {
		t.Errorf("the first load made %d requests", loadRequests)
	}

	// Many Opens, concurrent too: within one interval none should ask;
	// should the interval pass during them, one may.
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if c, err := l.Open(s.url(), nil); err != nil || c != first {
					t.Errorf("Open within the interval: %v, %p (want the first load, %p)", err, c, first)
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if n := s.requests.Load() - loadRequests; n > 1 {
		t.Errorf("400 Opens in %v made %d requests for the catalog, want at most 1 (interval %v)", took, n, interval)
	}
	t.Logf("400 Opens in %v", took.Round(time.Millisecond))

	// After the interval, one Open starts one check (a HEAD; the catalog
	// is unchanged, so no GET) and the parse is reused.
	waitFor(t, 5*time.Second, "background check still running", func() bool { return !checking(l, s.url()) })
	before := s.requests.Load()
	time.Sleep(interval + 50*time.Millisecond)
	for i := 0; i < 20; i++ {
		if c := mustOpen(t, l, s.url(), 2*time.Second); c != first {
			t.Fatalf("an unchanged catalog was parsed again")
		}
	}
	waitFor(t, 5*time.Second, "the recheck never ended", func() bool { return !checking(l, s.url()) })
	if n := s.requests.Load() - before; n != 1 {
		t.Errorf("20 Opens after the interval made %d requests, want 1 (a HEAD)", n)
	}

	// An edit on the server shows after the interval.
	s.set(catWith("a", "b"))
	time.Sleep(interval + 50*time.Millisecond)
	waitFor(t, 10*time.Second, "the edited catalog never showed", func() bool {
		return entryNames(mustOpen(t, l, s.url(), 2*time.Second)) == "a,b"
	})
}

// checking reports whether a check of the remote catalog u (no options)
// is running.
func checking(l *Loader, u string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	rc := l.remotes[u+"\x00"]
	return rc != nil && rc.checking
}

// TestRemoteCatalogServerDown: after a first good load, a server that
// stalls or refuses connections costs Opens no time, they keep the last
// good catalog, the log says so once with the URL, and once the server is
// back an edit shows.
func TestRemoteCatalogServerDown(t *testing.T) {
	for _, tc := range []struct {
		name     string
		down, up func(*catServer)
		timeout  time.Duration
	}{
		// the stall outlasts the request bound, so a check fails by
		// timing out after 3 s while Opens go on
		{"stall", (*catServer).stall, (*catServer).unstall, 3 * time.Second},
		{"refuse", (*catServer).refuse, (*catServer).recover, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const interval = 300 * time.Millisecond
			// on a loaded 2-core machine; a check takes 3 s
			const prompt = 1500 * time.Millisecond
			s := startCatServer(t, catWith("a"))
			l, log := remoteLoader(t, interval, tc.timeout)
			first := mustOpen(t, l, s.url(), 10*time.Second)

			tc.down(s)
			time.Sleep(interval + 50*time.Millisecond)
			before := s.requests.Load()
			// Opens from many goroutines, through the first failed check
			// and the next: all prompt, all the last good catalog.
			var wg sync.WaitGroup
			stop := time.Now().Add(2*tc.timeout + time.Second)
			var opens atomic.Int64
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Now().Before(stop) {
						start := time.Now()
						c, err := l.Open(s.url(), nil)
						if took := time.Since(start); took > prompt {
							t.Errorf("Open with the server down took %v", took.Round(time.Millisecond))
						}
						if err != nil || c != first {
							t.Errorf("Open with the server down: %v, entries %s; want the last good catalog", err, entryNames(c))
							return
						}
						opens.Add(1)
						time.Sleep(5 * time.Millisecond)
					}
				}()
			}
			if tc.name == "stall" {
				// the first check is stalled now: one request, however
				// many Opens
				time.Sleep(tc.timeout / 2)
				if n := s.requests.Load() - before; n != 1 {
					t.Errorf("%d requests while one check stalled, want 1", n)
				}
			}
			wg.Wait()
			t.Logf("%d Opens while the server was down", opens.Load())
			waitFor(t, 10*time.Second, "no warning logged", func() bool {
				return strings.Contains(log.String(), "remote catalog not reachable")
			})
			out := log.String()
			if n := strings.Count(out, "remote catalog not reachable"); n != 1 {
				t.Errorf("%d warnings for one outage, want 1:\n%s", n, out)
			}
			if !strings.Contains(out, s.url()) || !strings.Contains(out, "storage unavailable") {
				t.Errorf("the warning does not name the URL and the reason:\n%s", out)
			}

			s.set(catWith("a", "c"))
			tc.up(s)
			waitFor(t, 15*time.Second, "the edited catalog never showed after the server came back", func() bool {
				c, err := l.Open(s.url(), nil)
				return err == nil && entryNames(c) == "a,c"
			})
			if !strings.Contains(log.String(), "remote catalog loaded again") {
				t.Errorf("the recovery is not logged:\n%s", log.String())
			}
		})
	}
}

// TestRemoteCatalogGone: definite answers empty a catalog, as for a local
// file: edited into something that is no catalog, or gone (404). Each is
// logged once; a catalog never loaded shows its error.
func TestRemoteCatalogGone(t *testing.T) {
	const interval = 200 * time.Millisecond
	s := startCatServer(t, catWith("a"))
	l, log := remoteLoader(t, interval, 3*time.Second)
	mustOpen(t, l, s.url(), 10*time.Second)

	missing := "http://" + s.addr + "/missing.yaml"
	if _, err := l.Open(missing, nil); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("a missing catalog: %v, want an error saying it does not exist", err)
	}

	s.set("sources: [not, a, mapping\n")
	waitFor(t, 10*time.Second, "a catalog edited into bad YAML is still served", func() bool {
		_, err := l.Open(s.url(), nil)
		return err != nil
	})
	time.Sleep(3 * interval) // more checks, which must not log it again
	if n := strings.Count(log.String(), "catalog not loaded"); n != 1 {
		t.Errorf("a catalog edited into bad YAML is logged %d times, want once:\n%s", n, log.String())
	}
	s.set(catWith("a", "d"))
	waitFor(t, 10*time.Second, "the mended catalog never showed", func() bool {
		c, err := l.Open(s.url(), nil)
		return err == nil && entryNames(c) == "a,d"
	})

	s.mu.Lock()
	s.gone = true
	s.mu.Unlock()
	waitFor(t, 10*time.Second, "a catalog gone from its server is still served", func() bool {
		_, err := l.Open(s.url(), nil)
		return err != nil && strings.Contains(err.Error(), "does not exist")
	})
	if !strings.Contains(log.String(), "remote catalog not loaded") {
		t.Errorf("dropping the catalog is not logged:\n%s", log.String())
	}
}

// TestLoaderCloseEndsBackgroundChecks: a background check held by a server
// that never answers ends when the loader is closed (its request is
// cancelled, not left to run out its bounds), and after Close an Open that
// finds a check due makes it itself.
func TestLoaderCloseEndsBackgroundChecks(t *testing.T) {
	const interval = 200 * time.Millisecond
	s := startCatServer(t, catWith("a"))
	defer s.unstall()
	// bounds far beyond the test: only Close can end the stalled check
	l, _ := remoteLoader(t, interval, 10*time.Minute)
	mustOpen(t, l, s.url(), 10*time.Second)

	s.stall()
	time.Sleep(interval + 50*time.Millisecond)
	mustOpen(t, l, s.url(), 2*time.Second) // starts the background check
	waitFor(t, 10*time.Second, "no background check started", func() bool { return checking(l, s.url()) })

	closed := make(chan struct{})
	go func() { l.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10 s while a check was stalled")
	}
	if checking(l, s.url()) {
		t.Error("a check is still marked running after Close")
	}

	// after Close, a due check is made in the foreground
	s.unstall()
	s.set(catWith("b"))
	time.Sleep(interval + 50*time.Millisecond)
	before := s.requests.Load()
	if c := mustOpen(t, l, s.url(), 10*time.Second); entryNames(c) != "b" {
		t.Errorf("Open after Close gave %q, want the catalog as it is now (b)", entryNames(c))
	}
	if s.requests.Load() == before {
		t.Error("Open of a due catalog after Close made no request")
	}
	if checking(l, s.url()) {
		t.Error("a check is marked running after the Open that made it returned")
	}
}
