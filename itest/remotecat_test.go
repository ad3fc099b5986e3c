package itest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRemoteCatalogServerStalls mounts a root catalog served over HTTP
// whose sources are local files, then freezes the server (every request
// hangs, as under kill -STOP). Once the catalog is due for its recheck
// (every 10 s), ls and reads of the local sources must still answer
// promptly from the catalog last loaded, the log must say so once, and
// when the server answers again an edit of the catalog shows.
func TestRemoteCatalogServerStalls(t *testing.T) {
	remoteEnv(t)
	// well below one retry budget of boundedFlags (3 s), which each
	// lookup would wait if it checked the catalog itself
	const prompt = 2 * time.Second
	const recheck = 10 * time.Second // README

	data := t.TempDir()
	sData, tData := []byte("a,b\n1,2\n"), []byte("x\n7\n8\n")
	for name, b := range map[string][]byte{"s.csv": sData, "t.csv": tData} {
		if err := os.WriteFile(filepath.Join(data, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	catalog := func(names ...string) string {
		var w strings.Builder
		w.WriteString("sources:\n")
		for _, n := range names {
			fmt.Fprintf(&w, "  %s: {driver: csv, args: {urlpath: '%s/%s.csv'}}\n", n, data, n)
		}
		return w.String()
	}

	var mu sync.Mutex
	body := catalog("s", "t")
	var frozen chan struct{} // non-nil: requests hang until it is closed
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		b, f := body, frozen
		mu.Unlock()
		if f != nil {
			select {
			case <-f:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("ETag", fmt.Sprintf(`"%x"`, sha256.Sum256([]byte(b))))
		http.ServeContent(w, r, "cat.yaml", time.Unix(1_700_000_000, 0), strings.NewReader(b))
	}))
	thaw := func() {
		mu.Lock()
		if frozen != nil {
			close(frozen)
			frozen = nil
		}
		mu.Unlock()
	}
	t.Cleanup(srv.Close)
	t.Cleanup(thaw) // before Close, which waits for the hung handlers
	catURL := srv.URL + "/cat.yaml"

	d := mount(t, catURL, boundedFlags...)
	checkNames(t, d.Mnt, map[string]bool{".catalog": true, "s.csv": false, "t.csv": false})
	if got := readFile(t, d.path("s.csv")); !bytes.Equal(got, sData) {
		t.Fatalf("s.csv: %s", sameBytes(got, sData))
	}

	mu.Lock()
	frozen = make(chan struct{})
	mu.Unlock()
	frozenAt := time.Now()
	time.Sleep(recheck + time.Second) // the kernel's caches expire too (5 s)

	// timed runs op on the mount and fails the test unless it was prompt.
	timed := func(what string, op func()) {
		t.Helper()
		start := time.Now()
		op()
		took := time.Since(start)
		t.Logf("%s %v after the server froze: %v", what, time.Since(frozenAt).Round(time.Second), took.Round(time.Millisecond))
		if took > prompt {
			t.Errorf("%s with the catalog's server frozen took %v, more than %v", what, took.Round(time.Millisecond), prompt)
		}
	}
	lsAndRead := func() {
		t.Helper()
		timed("ls", func() {
			checkNames(t, d.Mnt, map[string]bool{".catalog": true, "s.csv": false, "t.csv": false})
		})
		for name, want := range map[string][]byte{"t.csv": tData, "s.csv": sData} {
			timed("cat "+name, func() {
				b, err := withTimeout(t, "read "+name, func() ([]byte, error) { return os.ReadFile(d.path(name)) })
				if err != nil {
					t.Errorf("%s (local data) with the catalog's server frozen: %v", name, err)
				} else if diff := sameBytes(b, want); diff != "" {
					t.Errorf("%s: %s", name, diff)
				}
			})
		}
	}
	// while the first recheck hangs
	lsAndRead()

	// once it has failed: the catalog last loaded stays, and the log says
	// so once, naming the URL
	deadline := time.Now().Add(failureBound)
	for !logLineWith(d.Output(), "remote catalog not reachable", catURL) {
		if time.Now().After(deadline) {
			t.Fatalf("no warning naming %s in the log after %v:\n%s", catURL, failureBound, tail(d.Output(), 20))
		}
		time.Sleep(100 * time.Millisecond)
	}
	lsAndRead()
	if n := strings.Count(d.Output(), "remote catalog not reachable"); n != 1 {
		t.Errorf("%d warnings for one outage, want 1:\n%s", n, tail(d.Output(), 20))
	}

	// The server answers again, with an edited catalog: it shows within
	// about one recheck interval.
	mu.Lock()
	body = catalog("s", "t", "u")
	mu.Unlock()
	thaw()
	deadline = time.Now().Add(2*recheck + failureBound)
	for {
		if _, ok := readDirNames(t, d.Mnt)["u.csv"]; ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edited catalog never showed after the server answered again:\n%s", tail(d.Output(), 20))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !logLineWith(d.Output(), "remote catalog loaded again", catURL) {
		t.Errorf("the recovery is not in the log:\n%s", tail(d.Output(), 20))
	}
}
