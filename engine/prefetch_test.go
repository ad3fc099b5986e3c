package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// shortPrefetchTimes makes the wait for a reader and the backoff short.
func shortPrefetchTimes(t *testing.T, fresh, backoff time.Duration) {
	oldF, oldB := prefetchFresh, prefetchBackoff
	prefetchFresh, prefetchBackoff = fresh, backoff
	t.Cleanup(func() { prefetchFresh, prefetchBackoff = oldF, oldB })
}

func nestedTree(n int, source func(i int) string) map[string]string {
	files := map[string]string{"data/x.csv": "x\n1\n"}
	root := "sources:\n"
	for i := 0; i < n; i++ {
		root += fmt.Sprintf("  c%03d: {driver: yaml_file_cat, args: {path: '{{ CATALOG_DIR }}/c%03d.yaml'}}\n", i, i)
		files[fmt.Sprintf("c%03d.yaml", i)] = "sources:\n" + source(i)
	}
	files["cat.yaml"] = root
	return files
}

func plainSource(int) string {
	return "  s:\n    driver: csv\n    args: {urlpath: '{{ CATALOG_DIR }}/data/x.csv'}\n"
}

// When nothing built ahead is used, nobody is walking: the worker stops,
// and listing the root again builds nothing ahead for a while. One ls of a
// root with many nested catalogs costs at most prefetchAhead builds.
func TestPrefetchGivesUp(t *testing.T) {
	shortPrefetchTimes(t, 300*time.Millisecond, time.Hour)
	f := newFS(t, writeTree(t, nestedTree(prefetchAhead+40, plainSource)), "cat.yaml")
	names(t, f, "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.prefetch.mu.Lock()
		running, queued, idle := f.prefetch.running, len(f.prefetch.queue), !f.prefetch.idleUntil.IsZero()
		f.prefetch.mu.Unlock()
		if !running {
			if queued != 0 || !idle {
				t.Fatalf("stopped with %d queued, backing off %v", queued, idle)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("building ahead did not stop")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := prefetchedIdents(f); len(got) != prefetchAhead {
		t.Fatalf("%d listings built ahead, want %d", len(got), prefetchAhead)
	}
	names(t, f, "") // listed again, while backing off
	f.prefetch.mu.Lock()
	running, queued := f.prefetch.running, len(f.prefetch.queue)
	f.prefetch.mu.Unlock()
	if running || queued != 0 {
		t.Fatalf("backing off, yet %d queued (running %v)", queued, running)
	}
	// what was built ahead and went stale is rebuilt for a reader, the same
	if got := names(t, f, "c000"); !reflect.DeepEqual(got, []string{".catalog/", "s/", "s.csv"}) {
		t.Fatalf("c000: %v", got)
	}
}

// Nothing is built ahead that needs a decompression (a compressed file, an
// archive), and nothing when shell() is allowed; the sources are planned,
// and the archives read, only when a reader asks.
func TestPrefetchSkipsCostlyData(t *testing.T) {
	dir := t.TempDir()
	files := nestedTree(3, func(i int) string {
		switch i {
		case 0:
			return "  gz:\n    driver: csv\n    args: {urlpath: '{{ CATALOG_DIR }}/data/x.csv.gz'}\n"
		case 1:
			return "  z:\n    driver: csv\n    args: {urlpath: '{{ CATALOG_DIR }}/data/x.zip'}\n"
		}
		return plainSource(i)
	})
	for p, c := range files {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		writeFile(t, full, c)
	}
	sh(t, filepath.Join(dir, "data"), "gzip -k x.csv && zip -q x.zip x.csv")
	f := newFS(t, dir, "cat.yaml")
	names(t, f, "")
	if got := waitPrefetchIdle(t, f); !reflect.DeepEqual(got, []string{"root/c002"}) {
		t.Fatalf("built ahead: %v, want only the plain one", got)
	}
	if n := f.spools.opened.Load(); n != 0 {
		t.Fatalf("building ahead decompressed %d streams", n)
	}
	if n := f.zips.parsed.Load(); n != 0 {
		t.Fatalf("building ahead parsed %d zip directories", n)
	}
	f.mu.Lock()
	for k, pe := range f.plans {
		if errors.Is(pe.err, errNotAhead) {
			t.Errorf("the plan given up ahead of use is kept for %q", k)
		}
	}
	f.mu.Unlock()
	// a reader gets them whole
	if got := mustRead(t, f, "c000/gz.csv"); got != "x\n1\n" {
		t.Fatalf("c000/gz.csv: %q", got)
	}
	if got := mustRead(t, f, "c001/z.csv"); got != "x\n1\n" {
		t.Fatalf("c001/z.csv: %q", got)
	}

	shelled, err := New(filepath.Join(dir, "cat.yaml"), Options{Cwd: dir, AllowShell: true, SpoolDir: filepath.Join(t.TempDir(), "spool")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(shelled.Close)
	names(t, shelled, "")
	if got := waitPrefetchIdle(t, shelled); len(got) != 0 {
		t.Fatalf("with shell() allowed, built ahead: %v", got)
	}
}

// Close stops a build ahead in progress at the next entry: a daemon asked
// to exit does not wait for a catalog of tens of thousands of sources.
func TestPrefetchCloseStopsBuild(t *testing.T) {
	files := nestedTree(2, func(i int) string {
		var b strings.Builder
		for j := 0; j < 20000; j++ {
			fmt.Fprintf(&b, "  s%05d:\n    driver: csv\n    args: {urlpath: '{{ CATALOG_DIR }}/data/x.csv'}\n", j)
		}
		return b.String()
	})
	f := newFS(t, writeTree(t, files), "cat.yaml")
	names(t, f, "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		// the build has started once the nested catalog is loaded
		f.mu.Lock()
		started := len(f.views) > 0
		f.mu.Unlock()
		if started || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	// building 20,000 entries takes far longer than getting here from
	// the moment the first nested catalog is loaded
	start := time.Now()
	f.Close()
	took := time.Since(start)
	if got := prefetchedIdents(f); len(got) != 0 {
		t.Errorf("Close waited %v for the build in progress to finish (built: %v)", took, got)
	}
}
