package engine

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// prefetchedIdents are the listings built ahead and not used yet.
func prefetchedIdents(f *FS) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id, l := range f.listings {
		if l.prefetched {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// waitPrefetchIdle waits until the worker has nothing left to do (or is
// waiting for a reader), then gives the listings built ahead.
func waitPrefetchIdle(t *testing.T, f *FS) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	last, stable := prefetchedIdents(f), 0
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		f.prefetch.mu.Lock()
		idle := !f.prefetch.running || f.prefetch.unused >= prefetchAhead
		f.prefetch.mu.Unlock()
		now := prefetchedIdents(f)
		if idle && reflect.DeepEqual(now, last) {
			if stable++; stable >= 5 {
				return now
			}
		} else {
			stable = 0
		}
		last = now
	}
	t.Fatalf("prefetch still busy after 10 s; built ahead so far: %v", last)
	return nil
}

// countingServer serves files from memory and counts the requests.
func countingServer(t *testing.T, files map[string]string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, r.URL.Path, time.Unix(1_700_000_000, 0), strings.NewReader(body))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestPrefetchNestedListings: listing a catalog builds the listings of its
// local nested catalogs in the background; a nested catalog whose file or
// whose data is remote costs no request until a reader asks for it; the
// listings built ahead are the ones readers get, and they are the same as
// listings built on demand.
func TestPrefetchNestedListings(t *testing.T) {
	srv, requests := countingServer(t, map[string]string{
		"/remote.yaml": "sources:\n  r:\n    driver: csv\n    args: {urlpath: '{{ CATALOG_DIR }}/r.csv'}\n",
		"/r.csv":       "a\n1\n",
		"/d.csv":       "a\n2\n",
	})
	local := func(i int) string {
		return fmt.Sprintf("sources:\n  s%d:\n    driver: csv\n    args: {urlpath: '{{ CATALOG_DIR }}/data/s%d.csv'}\n", i, i)
	}
	files := map[string]string{
		"cat.yaml": fmt.Sprintf(`sources:
  a: {driver: yaml_file_cat, args: {path: '{{ CATALOG_DIR }}/a.yaml'}}
  b: {driver: yaml_file_cat, args: {path: '{{ CATALOG_DIR }}/b.yaml'}}
  c: {driver: intake.catalog.local.YAMLFileCatalog, args: {path: '{{ CATALOG_DIR }}/c.yaml'}}
  far: {driver: yaml_file_cat, args: {path: '%[1]s/remote.yaml'}}
  mixed: {driver: yaml_file_cat, args: {path: '{{ CATALOG_DIR }}/mixed.yaml'}}
  top: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/data/s0.csv'}}
`, srv.URL),
		"a.yaml": local(1), "b.yaml": local(2), "c.yaml": local(3),
		// local catalog, one local and one remote source
		"mixed.yaml":  local(4) + fmt.Sprintf("  d:\n    driver: csv\n    args: {urlpath: '%s/d.csv'}\n", srv.URL),
		"data/s0.csv": "x\n0\n", "data/s1.csv": "x\n1\n", "data/s2.csv": "x\n2\n",
		"data/s3.csv": "x\n3\n", "data/s4.csv": "x\n4\n",
	}
	dir := writeTree(t, files)
	f := newFS(t, dir, "cat.yaml")

	names(t, f, "") // a reader lists the root
	got := waitPrefetchIdle(t, f)
	if want := []string{"root/a", "root/b", "root/c"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("built ahead: %v, want %v", got, want)
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("building ahead made %d requests", n)
	}
	// a reader gets the listing built ahead, once: it then counts as used
	if got := names(t, f, "b"); !reflect.DeepEqual(got, []string{".catalog/", "s2/", "s2.csv"}) {
		t.Fatalf("b: %v", got)
	}
	if got := prefetchedIdents(f); !reflect.DeepEqual(got, []string{"root/a", "root/c"}) {
		t.Fatalf("after reading b, still unused: %v", got)
	}
	f.prefetch.mu.Lock()
	unused := f.prefetch.unused
	f.prefetch.mu.Unlock()
	if unused != 2 {
		t.Fatalf("unused count %d, want 2", unused)
	}
	// the remote ones are built when asked for, with their requests
	if got := names(t, f, "mixed"); !reflect.DeepEqual(got, []string{".catalog/", "d/", "d.csv", "s4/", "s4.csv"}) {
		t.Fatalf("mixed: %v", got)
	}
	if got := names(t, f, "far"); !reflect.DeepEqual(got, []string{".catalog/", "r/", "r.csv"}) {
		t.Fatalf("far: %v", got)
	}
	if requests.Load() == 0 {
		t.Fatal("listing the remote ones made no request")
	}
	if got := mustRead(t, f, "a/s1.csv"); got != "x\n1\n" {
		t.Fatalf("a/s1.csv: %q", got)
	}

	// the same tree without building ahead lists the same
	plain := newFS(t, dir, "cat.yaml")
	plain.Close() // a closed FS builds nothing ahead
	for _, p := range []string{"a", "b", "c", "mixed", "far"} {
		if a, b := names(t, f, p), names(t, plain, p); !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: built ahead %v, on demand %v", p, a, b)
		}
	}
	if got := prefetchedIdents(plain); len(got) != 0 {
		t.Fatalf("a closed FS built ahead: %v", got)
	}
}

// TestPrefetchBounded: at most prefetchAhead listings wait for a reader;
// each one used lets one more be built.
func TestPrefetchBounded(t *testing.T) {
	const n = prefetchAhead + 20
	files := map[string]string{"data/x.csv": "x\n1\n"}
	root := "sources:\n"
	for i := 0; i < n; i++ {
		root += fmt.Sprintf("  c%03d: {driver: yaml_file_cat, args: {path: '{{ CATALOG_DIR }}/c%03d.yaml'}}\n", i, i)
		files[fmt.Sprintf("c%03d.yaml", i)] = "sources:\n  s:\n    driver: csv\n    args: {urlpath: '{{ CATALOG_DIR }}/data/x.csv'}\n"
	}
	files["cat.yaml"] = root
	f := newFS(t, writeTree(t, files), "cat.yaml")
	names(t, f, "")
	got := waitPrefetchIdle(t, f)
	if len(got) != prefetchAhead || got[0] != "root/c000" || got[prefetchAhead-1] != fmt.Sprintf("root/c%03d", prefetchAhead-1) {
		t.Fatalf("built ahead %d listings (%v...), want the first %d", len(got), got[:min(3, len(got))], prefetchAhead)
	}
	names(t, f, "c000")
	names(t, f, "c001")
	got = waitPrefetchIdle(t, f)
	if len(got) != prefetchAhead || got[len(got)-1] != fmt.Sprintf("root/c%03d", prefetchAhead+1) {
		t.Fatalf("after two were used: %d built ahead, last %s", len(got), got[len(got)-1])
	}
}

// TestPrefetchConcurrentReaders: readers walking the tree while it is built
// ahead get the same listings as without (run with -race).
func TestPrefetchConcurrentReaders(t *testing.T) {
	files := map[string]string{}
	root := "sources:\n"
	for i := 0; i < 30; i++ {
		root += fmt.Sprintf("  c%02d: {driver: yaml_file_cat, args: {path: '{{ CATALOG_DIR }}/c%02d.yaml'}}\n", i, i)
		cat := "sources:\n"
		for j := 0; j < 20; j++ {
			cat += fmt.Sprintf("  s%02d:\n    driver: csv\n    args: {urlpath: '{{ CATALOG_DIR }}/data/%02d-%02d.csv'}\n", j, i, j)
			files[fmt.Sprintf("data/%02d-%02d.csv", i, j)] = fmt.Sprintf("v\n%d\n", i*100+j)
		}
		files[fmt.Sprintf("c%02d.yaml", i)] = cat
	}
	files["cat.yaml"] = root
	dir := writeTree(t, files)
	plain := newFS(t, dir, "cat.yaml")
	plain.Close()
	want := map[string][]string{}
	for i := 0; i < 30; i++ {
		p := fmt.Sprintf("c%02d", i)
		want[p] = names(t, plain, p)
	}
	f := newFS(t, dir, "cat.yaml")
	names(t, f, "")
	var wg sync.WaitGroup
	errs := make(chan error, 120)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			for k := 0; k < 30; k++ {
				i := (k*7 + r*11) % 30
				p := fmt.Sprintf("c%02d", i)
				n, err := f.Walk(context.Background(), p)
				if err != nil {
					errs <- err
					return
				}
				ns, err := n.(Dir).ReadDir(context.Background())
				if err != nil {
					errs <- err
					return
				}
				if len(ns) != len(want[p]) {
					errs <- fmt.Errorf("%s: %d names, want %d", p, len(ns), len(want[p]))
				}
				if got, err := readPath(t, f, fmt.Sprintf("%s/s%02d.csv", p, i%20)); err != nil || got != fmt.Sprintf("v\n%d\n", i*100+i%20) {
					errs <- fmt.Errorf("%s: read %q, %v", p, got, err)
				}
			}
		}(r)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
