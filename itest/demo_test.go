package itest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// demoFile is a data file of the demo mount (testdata/demo/catalog.yaml).
type demoFile struct {
	source string   // the source's path in the catalog, nested ones with "/"
	file   string   // its data file in the mount
	orig   []string // the files under testdata/vega it is made of
	kind   string   // csv, json, parquet, arrow
}

var demoFiles = []demoFile{
	{"seattle_weather", "seattle_weather.csv", []string{"data/seattle-weather.csv"}, "csv"},
	{"seattle_weather_parts", "seattle_weather_parts.csv", []string{
		"parts/seattle-weather-part1.csv", "parts/seattle-weather-part2.csv", "parts/seattle-weather-part3.csv"}, "csv"},
	{"stocks", "stocks.csv", []string{"data/stocks.csv"}, "csv"},
	{"airports", "airports.csv", []string{"data/airports.csv"}, "csv"},
	{"cars", "cars.json", []string{"data/cars.json"}, "json"},
	{"movies", "movies.json", []string{"data/movies.json"}, "json"},
	{"flights_3m", "flights_3m.parquet", []string{"data/flights-3m.parquet"}, "parquet"},
	{"flights_200k", "flights_200k.arrow", []string{"data/flights-200k.arrow"}, "arrow"},
	{"flights/flights", "flights/flights.json", []string{"data/flights-2k.json"}, "json"},
	{"flights/routes", "flights/routes.csv", []string{"data/flights-airport.csv"}, "csv"},
}

// flightSizes are the allowed values of the flights source's size parameter.
var flightSizes = []string{"2k", "5k", "10k", "20k", "200k"}

// expected is what a file made of these parts reads as: one file as it is;
// several CSV parts concatenated with the header row kept once.
func expected(t *testing.T, f demoFile) []byte {
	t.Helper()
	if len(f.orig) == 1 {
		return readFile(t, vega(f.orig[0]))
	}
	var out bytes.Buffer
	var header []byte
	for i, p := range f.orig {
		b := readFile(t, vega(p))
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			t.Fatalf("%s has no header line", p)
		}
		h, body := b[:nl+1], b[nl+1:]
		if i == 0 {
			header = h
			out.Write(h)
		} else if !bytes.Equal(h, header) {
			t.Fatalf("%s: header %q differs from %q", p, h, header)
		}
		out.Write(body)
		if len(body) > 0 && body[len(body)-1] != '\n' {
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

func TestDemoListing(t *testing.T) {
	needVega(t)
	// --read-only as rclone mount takes it: accepted, and what it always is
	d := mount(t, demoCatalog, "--read-only")

	t.Run("ready message", func(t *testing.T) {
		want := "mounted " + demoCatalog + " at " + d.Mnt
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(d.Output(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("stderr lacks %q; it has:\n%s", want, tail(d.Output(), 20))
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("root", func(t *testing.T) {
		want := map[string]bool{".catalog": true, "flights": true} // name -> is a directory
		for _, f := range demoFiles {
			if !strings.Contains(f.source, "/") {
				want[f.file] = false
				want[f.source] = true
			}
		}
		checkListing(t, d.path(""), want, nil)
	})

	t.Run("nested catalog", func(t *testing.T) {
		want := map[string]bool{
			".catalog": true, "flights.json": false, "flights": true, "routes.csv": false, "routes": true,
		}
		for _, s := range flightSizes[1:] {
			want["flights@size="+s+".json"] = false
		}
		// The default's variant, and variant directories, may be listed too.
		extra := func(name string) bool {
			for _, s := range flightSizes {
				if name == "flights@size="+s+".json" || name == "flights@size="+s {
					return true
				}
			}
			return false
		}
		checkListing(t, d.path("flights"), want, extra)
	})

	t.Run("source directories", func(t *testing.T) {
		for _, f := range demoFiles {
			dir := d.path(f.source)
			checkListing(t, dir, map[string]bool{"describe.yaml": false, "metadata.json": false}, nil)
			desc := readFile(t, filepath.Join(dir, "describe.yaml"))
			if !bytes.Contains(desc, []byte(filepath.Base(f.source))) {
				t.Errorf("%s/describe.yaml does not name the source:\n%s", f.source, desc)
			}
			var md map[string]any
			if err := json.Unmarshal(readFile(t, filepath.Join(dir, "metadata.json")), &md); err != nil {
				t.Errorf("%s/metadata.json: %v", f.source, err)
				continue
			}
			if _, ok := md["catalog_dir"]; !ok {
				t.Errorf("%s/metadata.json has no catalog_dir: %v", f.source, md)
			}
			if title, _ := md["title"].(string); title == "" || strings.Contains(title, "{{") {
				t.Errorf("%s/metadata.json: title %q, want a rendered title", f.source, md["title"])
			}
		}
	})

	t.Run(".catalog", func(t *testing.T) {
		for _, dir := range []string{".catalog", "flights/.catalog"} {
			want := map[string]bool{"describe.yaml": false, "metadata.json": false, "errors.txt": false}
			if dir == ".catalog" {
				want["stats.json"] = false // the root's cache and request counters
			}
			checkListing(t, d.path(dir), want, nil)
			if b := readFile(t, d.path(dir+"/errors.txt")); len(b) != 0 {
				t.Errorf("%s/errors.txt is not empty:\n%s", dir, b)
			}
			if fi := statFile(t, d.path(dir+"/errors.txt")); fi.Size() != 0 {
				t.Errorf("%s/errors.txt: stat size %d, want 0", dir, fi.Size())
			}
		}
		desc := string(readFile(t, d.path(".catalog/describe.yaml")))
		if !strings.Contains(desc, "intakefs_demo") {
			t.Errorf(".catalog/describe.yaml lacks the catalog's name:\n%s", desc)
		}
		var md map[string]any
		if err := json.Unmarshal(readFile(t, d.path(".catalog/metadata.json")), &md); err != nil {
			t.Fatalf(".catalog/metadata.json: %v", err)
		}
		if v, _ := md["version"].(float64); v != 1 {
			t.Errorf(".catalog/metadata.json: version %v, want 1 (%v)", md["version"], md)
		}
		if o, _ := md["origin"].(map[string]any); o == nil || o["package"] != "vega-datasets" {
			t.Errorf(".catalog/metadata.json: origin %v, want the catalog's metadata", md["origin"])
		}
	})

	t.Run("read-only", func(t *testing.T) {
		for _, p := range []string{"new.csv", "stocks.csv", "stocks/describe.yaml"} {
			_, err := withTimeout(t, "create "+p, func() (*os.File, error) {
				f, err := os.OpenFile(d.path(p), os.O_WRONLY|os.O_CREATE, 0o644)
				if err == nil {
					f.Close()
				}
				return f, err
			})
			if !errors.Is(err, syscall.EROFS) {
				t.Errorf("open %s for writing: %v, want EROFS", p, err)
			}
		}
		_, err := withTimeout(t, "mkdir", func() (int, error) { return 0, os.Mkdir(d.path("newdir"), 0o755) })
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("mkdir: %v, want EROFS", err)
		}
	})

	t.Run("missing names", func(t *testing.T) {
		for _, p := range []string{"nosuch.csv", "nosuch", "stocks.json", "stocks/nosuch.yaml", "flights/nosuch.json"} {
			_, err := withTimeout(t, "stat "+p, func() (os.FileInfo, error) { return os.Stat(d.path(p)) })
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("stat %s: %v, want ENOENT", p, err)
			}
		}
	})
}

// checkListing checks that dir lists exactly the names of want (name -> is
// a directory), plus names for which extra returns true.
func checkListing(t *testing.T, dir string, want map[string]bool, extra func(string) bool) {
	t.Helper()
	got := readDirNames(t, dir)
	var missing, unexpected []string
	for name, isDir := range want {
		mode, ok := got[name]
		if !ok {
			missing = append(missing, name)
			continue
		}
		if mode.IsDir() != isDir {
			t.Errorf("%s/%s: directory=%v in the listing, want %v", dir, name, mode.IsDir(), isDir)
		}
		fi := statFile(t, filepath.Join(dir, name))
		if fi.IsDir() != isDir || (!isDir && !fi.Mode().IsRegular()) {
			t.Errorf("stat %s/%s: mode %v, want directory=%v", dir, name, fi.Mode(), isDir)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok && (extra == nil || !extra(name)) {
			unexpected = append(unexpected, name)
		}
	}
	sort.Strings(missing)
	sort.Strings(unexpected)
	if len(missing) > 0 {
		t.Errorf("%s: missing %q (listing: %q)", dir, missing, sortedKeys(got))
	}
	if len(unexpected) > 0 {
		t.Errorf("%s: unexpected %q", dir, unexpected)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestDemoRead(t *testing.T) {
	needVega(t)
	d := mount(t, demoCatalog)
	for _, f := range demoFiles {
		t.Run(strings.ReplaceAll(f.file, "/", "_"), func(t *testing.T) {
			want := expected(t, f)
			p := d.path(f.file)
			before := statFile(t, p)
			if !before.Mode().IsRegular() {
				t.Fatalf("%s: mode %v, want a regular file", f.file, before.Mode())
			}
			// One file: its size is known before any read. Several parts:
			// the size may only be known once read.
			if before.Size() != int64(len(want)) && (len(f.orig) == 1 || before.Size() != 0) {
				t.Errorf("stat %s before reading: size %d, want %d", f.file, before.Size(), len(want))
			}

			// As cat reads: sequentially, in small chunks.
			got, err := withTimeout(t, "cat "+f.file, func() ([]byte, error) { return readChunks(p, 32*1024) })
			if err != nil {
				t.Fatalf("read %s: %v", f.file, err)
			}
			if diff := sameBytes(got, want); diff != "" {
				t.Fatalf("%s differs from the original: %s", f.file, diff)
			}
			if after := statFile(t, p); after.Size() != int64(len(got)) {
				t.Errorf("stat %s after reading: size %d, but %d bytes were read", f.file, after.Size(), len(got))
			}

			// Random access: the end (a Parquet footer), the start, the middle.
			n := int64(len(want))
			for _, r := range [][2]int64{{n - 8, 8}, {0, min(n, 4096)}, {n / 2, min(n-n/2, 100000)}, {max(0, n-1), 1}} {
				off, size := r[0], r[1]
				buf, err := withTimeout(t, "pread "+f.file, func() ([]byte, error) { return preadAt(p, off, size) })
				if err != nil {
					t.Errorf("pread %s at %d+%d: %v", f.file, off, size, err)
					continue
				}
				if diff := sameBytes(buf, want[off:off+size]); diff != "" {
					t.Errorf("pread %s at %d+%d: %s", f.file, off, size, diff)
				}
			}
			if f.kind == "parquet" && !bytes.HasSuffix(got, []byte("PAR1")) {
				t.Errorf("%s does not end with the Parquet magic", f.file)
			}
		})
	}
}

// TestDemoConcurrentReads: several readers of the same files at once (the
// daemon's cache and file handles under contention) all see the original.
func TestDemoConcurrentReads(t *testing.T) {
	needVega(t)
	d := mount(t, demoCatalog)
	files := []demoFile{demoFiles[1], demoFiles[6], demoFiles[8]} // parts CSV, parquet, nested JSON
	want := map[string][]byte{}
	for _, f := range files {
		want[f.file] = expected(t, f)
	}
	const readers = 4
	type answer struct {
		file string
		diff string
	}
	answers, err := withTimeout(t, "concurrent reads", func() ([]answer, error) {
		ch := make(chan answer)
		for _, f := range files {
			for i := 0; i < readers; i++ {
				go func(name string, chunk int) {
					got, err := readChunks(d.path(name), chunk)
					if err != nil {
						ch <- answer{name, err.Error()}
						return
					}
					ch <- answer{name, sameBytes(got, want[name])}
				}(f.file, 4096<<i)
			}
		}
		var out []answer
		for range len(files) * readers {
			out = append(out, <-ch)
		}
		return out, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range answers {
		if a.diff != "" {
			t.Errorf("%s: %s", a.file, a.diff)
		}
	}
}

func readChunks(path string, chunk int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out bytes.Buffer
	buf := make([]byte, chunk)
	for {
		n, err := f.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

func preadAt(path string, off, size int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, size)
	n, err := f.ReadAt(buf, off)
	if err == io.EOF && int64(n) == size {
		err = nil
	}
	return buf[:n], err
}

func TestParameterInPath(t *testing.T) {
	needVega(t)
	d := mount(t, demoCatalog)

	for _, size := range flightSizes {
		t.Run("size="+size, func(t *testing.T) {
			name := "flights/flights@size=" + size + ".json"
			want := readFile(t, vega("data/flights-"+size+".json"))
			got := readFile(t, d.path(name))
			if diff := sameBytes(got, want); diff != "" {
				t.Fatalf("%s differs from flights-%s.json: %s", name, size, diff)
			}
			if fi := statFile(t, d.path(name)); fi.Size() != int64(len(want)) {
				t.Errorf("stat %s: size %d, want %d", name, fi.Size(), len(want))
			}
			var md map[string]any
			if err := json.Unmarshal(readFile(t, d.path("flights/flights@size="+size+"/metadata.json")), &md); err != nil {
				t.Fatalf("metadata.json for size=%s: %v", size, err)
			}
			if md["datapackage_name"] != "flights_"+size {
				t.Errorf("metadata.json for size=%s: datapackage_name %v, want the rendered flights_%s", size, md["datapackage_name"], size)
			}
		})
	}

	t.Run("listing shows the allowed values", func(t *testing.T) {
		got := readDirNames(t, d.path("flights"))
		for _, s := range flightSizes[1:] {
			if _, ok := got["flights@size="+s+".json"]; !ok {
				t.Errorf("flights/ does not list flights@size=%s.json (listing: %q)", s, sortedKeys(got))
			}
		}
	})

	t.Run("invalid values", func(t *testing.T) {
		for _, name := range []string{
			"flights@size=7k.json", // not allowed
			"flights@bogus=1.json", // unknown parameter
			"flights@size=7k",      // its directory
		} {
			_, err := withTimeout(t, "stat "+name, func() (os.FileInfo, error) { return os.Stat(d.path("flights/" + name)) })
			if !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				t.Errorf("stat flights/%s: %v, want EINVAL or ENOENT", name, err)
			}
		}
	})
}
