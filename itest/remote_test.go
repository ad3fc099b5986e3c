package itest

// Issue 4's proof: catalogs whose data — and catalog files that themselves
// — live on S3 (versitygw), GCS (fake-gcs-server) and HTTP, all on
// loopback, mounted by a real intakefs daemon and read with plain reads,
// pandas and DuckDB; the errors a reader gets (ENOENT, EACCES, EIO within a
// bounded time); credentials kept out of everything the daemon shows; and a
// server that dies in the middle of a read.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Flags that bound every remote request of a daemon tightly, so that a
// dead or dying server fails fast; failureBound is what a reader may wait
// for its EIO under them.
var boundedFlags = []string{"--retries", "2", "--retry-max-time", "3s", "--connect-timeout", "1s",
	"--request-timeout", "2s", "--idle-timeout", "2s"}

const failureBound = 15 * time.Second

// localBound is what a reader of a local file may wait, under
// boundedFlags, while other sources of its catalog are on dead servers:
// about one remote retry budget, with room for a slow machine.
const localBound = 6 * time.Second

// metadataSecret is a password in a URL that every test catalog carries in
// a source's metadata: describe.yaml and metadata.json must hide it.
const metadataSecret = "itest-metadata-password-91b7e3"

// backend is one storage server holding the demo objects, as a catalog
// addresses it.
type backend struct {
	name string
	// base is the URL of the directory holding the demo objects
	// ("s3://demo"); a catalog file there has it as CATALOG_DIR.
	base string
	// opts are the sources' storage_options, a YAML flow mapping.
	opts string
	// badOpts are storage_options with wrong credentials ("": the server
	// checks none).
	badOpts string
	// mountOpts are the --storage-option flags that reach the catalog
	// file in the server.
	mountOpts []string
	// canList: globs work (not over plain HTTP).
	canList bool
	// envOpts and env: one more source, "stocks_env", whose
	// storage_options (envOpts) leave something to the environment
	// (env), such as STORAGE_EMULATOR_HOST.
	envOpts string
	env     map[string]string
	// secrets must never show in what the daemon writes or serves.
	secrets []string
	put     func(key string, data []byte)
}

// TestRemoteS3 serves the demo data from versitygw, an S3 server that
// checks credentials (path-style endpoint, AWS_CA_BUNDLE set).
func TestRemoteS3(t *testing.T) {
	needVega(t)
	remoteEnv(t)
	s := startS3(t, "demo")
	ep := s.Endpoint
	opts := fmt.Sprintf("{key: %q, secret: %q, client_kwargs: {endpoint_url: %q}}", s.Key, s.Secret, ep)
	wrong := "itest-WRONG-secret-0c1d2e3f"
	b := backend{
		name:    "s3",
		base:    "s3://demo",
		opts:    opts,
		badOpts: fmt.Sprintf("{key: %q, secret: %q, client_kwargs: {endpoint_url: %q}}", s.Key, wrong, ep),
		mountOpts: []string{"--storage-option", "key=" + s.Key, "--storage-option", "secret=" + s.Secret,
			"--storage-option", "client_kwargs.endpoint_url=" + ep},
		canList: true,
		// The standard AWS environment variables carry the keys.
		envOpts: fmt.Sprintf("{endpoint_url: %q}", ep),
		env:     map[string]string{"AWS_ACCESS_KEY_ID": s.Key, "AWS_SECRET_ACCESS_KEY": s.Secret},
		secrets: []string{s.Secret, wrong},
		put:     func(key string, data []byte) { s.put(t, "demo", key, data) },
	}
	testBackend(t, b)
}

// TestRemoteGCS serves the demo data from fake-gcs-server.
func TestRemoteGCS(t *testing.T) {
	needVega(t)
	remoteEnv(t)
	srv := startGCS(t, "demo")
	ep := srv.URL()
	b := backend{
		name:      "gs",
		base:      "gs://demo",
		opts:      fmt.Sprintf("{token: anon, endpoint_url: %q}", ep),
		mountOpts: []string{"--storage-option", "token=anon", "--storage-option", "endpoint_url=" + ep},
		canList:   true,
		// The emulator convention: no endpoint in the catalog.
		envOpts: "{token: anon}",
		env:     map[string]string{"STORAGE_EMULATOR_HOST": strings.TrimPrefix(ep, "http://")},
		put:     func(key string, data []byte) { gcsPut(srv, "demo", key, data) },
	}
	testBackend(t, b)
}

// TestRemoteHTTP serves the demo data from a Go HTTP server that wants a
// bearer token (the fsspec "headers" storage option).
func TestRemoteHTTP(t *testing.T) {
	needVega(t)
	remoteEnv(t)
	s := startFileServer(t)
	wrong := "itest-WRONG-token-5a6b7c8d"
	b := backend{
		name:      "http",
		base:      s.URL + "/demo",
		opts:      fmt.Sprintf("{headers: {Authorization: %q}}", "Bearer "+s.Token),
		badOpts:   fmt.Sprintf("{headers: {Authorization: %q}}", "Bearer "+wrong),
		mountOpts: []string{"--storage-option", "headers.Authorization=Bearer " + s.Token},
		secrets:   []string{s.Token, wrong},
		put:       func(key string, data []byte) { s.put(t, "demo/"+key, data) },
	}
	testBackend(t, b)
}

// readCase is a mounted data file and the original it must equal.
type readCase struct{ mounted, original string }

func testBackend(t *testing.T, b backend) {
	b.secrets = append(b.secrets, metadataSecret)
	putDemo(t, b.put)
	b.put("cat.yaml", []byte(remoteCatalogYAML(b)))

	t.Run("LocalCatalog", func(t *testing.T) {
		for k, v := range b.env {
			t.Setenv(k, v) // the daemon inherits it
		}
		catPath := filepath.Join(t.TempDir(), "catalog.yaml")
		if err := os.WriteFile(catPath, []byte(localCatalogYAML(b)), 0o644); err != nil {
			t.Fatal(err)
		}
		d := mount(t, catPath, "--log-level", "debug")

		want := map[string]bool{ // name → is a directory
			".catalog": true, "stocks.csv": false, "stocks": true, "seattle_weather.csv": false,
			"cars.json": false, "flights_3m.parquet": false, "flights.json": false,
			"flights@size=5k.json": false, "weather_list.csv": false, "missing.csv": false,
		}
		cases := []readCase{
			{"stocks.csv", "data/stocks.csv"},
			{"seattle_weather.csv", "data/seattle-weather.csv"},
			{"cars.json", "data/cars.json"},
			{"flights_3m.parquet", "data/flights-3m.parquet"},
			{"flights.json", "data/flights-2k.json"},
			{"flights@size=5k.json", "data/flights-5k.json"},
			{"weather_list.csv", "data/seattle-weather.csv"}, // three parts, one header
		}
		if b.canList {
			want["weather_parts.csv"] = false
			want["flights_parts.json"] = true
			cases = append(cases,
				readCase{"weather_parts.csv", "data/seattle-weather.csv"},
				readCase{"flights_parts.json/flights-2k.json", "data/flights-2k.json"},
				readCase{"flights_parts.json/flights-5k.json", "data/flights-5k.json"})
		}
		if b.envOpts != "" {
			want["stocks_env.csv"] = false
			cases = append(cases, readCase{"stocks_env.csv", "data/stocks.csv"})
		}
		if b.badOpts != "" {
			want["denied.csv"] = false
		}
		checkNames(t, d.Mnt, want)
		if b.canList {
			got := readDirNames(t, d.path("flights_parts.json"))
			if len(got) != 2 || got["flights-2k.json"] != 0 || got["flights-5k.json"] != 0 {
				t.Errorf("flights_parts.json/ holds %v, want the files flights-2k.json and flights-5k.json", sortedKeys(got))
			}
		}
		checkReads(t, d, cases)
		checkParquetFooter(t, d.path("flights_3m.parquet"), vega("data/flights-3m.parquet"))

		t.Run("pandas", func(t *testing.T) {
			needPython(t)
			pandasCompare(t, "csv", d.path("stocks.csv"), vega("data/stocks.csv"))
			pandasCompare(t, "json", d.path("flights@size=5k.json"), vega("data/flights-5k.json"))
			pandasCompare(t, "csv", d.path("weather_list.csv"), vega("data/seattle-weather.csv"))
		})
		t.Run("duckdb", func(t *testing.T) {
			needNode(t)
			duckdbCompare(t, d.path("flights_3m.parquet"), vega("data/flights-3m.parquet"))
			if b.canList {
				duckdbCompare(t, d.path("weather_parts.csv"), vega("data/seattle-weather.csv"))
			} else {
				duckdbCompare(t, d.path("weather_list.csv"), vega("data/seattle-weather.csv"))
			}
		})

		t.Run("errors", func(t *testing.T) {
			// A missing object: ENOENT when the file is opened.
			_, err := openAndRead(d.path("missing.csv"), ioTimeout)
			if !errors.Is(err, iofs.ErrNotExist) {
				t.Errorf("missing.csv (%s/no-such-object.csv): got %v, want ENOENT", b.base, err)
			}
			if b.badOpts != "" {
				// Wrong credentials: EACCES.
				_, err := openAndRead(d.path("denied.csv"), ioTimeout)
				if !errors.Is(err, syscall.EACCES) {
					t.Errorf("denied.csv (wrong credentials): got %v, want EACCES", err)
				}
			}
			// What the daemon shows about the sources hides the secrets.
			shown := []string{".catalog/describe.yaml", ".catalog/metadata.json", ".catalog/errors.txt",
				"stocks/describe.yaml", "stocks/metadata.json", "missing/describe.yaml"}
			if b.badOpts != "" {
				shown = append(shown, "denied/describe.yaml", "denied/metadata.json")
			}
			for _, p := range shown {
				checkNoSecrets(t, p, string(readFile(t, d.path(p))), b.secrets)
			}
			md := readFile(t, d.path("stocks/metadata.json"))
			if !strings.Contains(string(md), "mirror.invalid") {
				t.Errorf("stocks/metadata.json lost its metadata: %s", md)
			}
			// The CLI's error text: the URL and why, never a secret.
			for _, c := range []struct{ name, url, why string }{
				{"missing.csv", b.base + "/no-such-object.csv", "does not exist"},
				{"denied.csv", b.base + "/stocks.csv", "permission denied"},
			} {
				if c.name == "denied.csv" && b.badOpts == "" {
					continue
				}
				r := run(t, time.Minute, "", binPath, "cat", "--log-level", "debug", catPath, c.name)
				if r.err == nil {
					t.Errorf("intakefs cat %s succeeded", c.name)
				}
				checkNoSecrets(t, "intakefs cat "+c.name, r.stdout+r.stderr, b.secrets)
				if !strings.Contains(r.stderr, c.url) || !strings.Contains(r.stderr, c.why) {
					t.Errorf("intakefs cat %s: want an error naming %s and saying %q, got %q", c.name, c.url, c.why, r.stderr)
				}
			}
			r := run(t, time.Minute, "", binPath, "describe", catPath, "stocks")
			if r.err != nil {
				t.Errorf("intakefs describe: %v\n%s", r.err, r.stderr)
			}
			checkNoSecrets(t, "intakefs describe stocks", r.stdout+r.stderr, b.secrets)
			// The daemon's log names what failed and never a secret.
			out := d.Output()
			checkNoSecrets(t, "the daemon's log", out, b.secrets)
			if !strings.Contains(out, b.base+"/no-such-object.csv") {
				t.Errorf("the daemon's log does not name the missing object:\n%s", tail(out, 20))
			}
			if b.badOpts != "" && !logLineWith(out, "permission denied", b.base+"/stocks.csv") {
				t.Errorf("the daemon's log has no line saying permission denied for %s/stocks.csv:\n%s", b.base, tail(out, 20))
			}
		})
	})

	t.Run("CatalogInServer", func(t *testing.T) {
		catURL := b.base + "/cat.yaml"
		d := mount(t, catURL, append([]string{"--log-level", "debug"}, b.mountOpts...)...)
		want := map[string]bool{".catalog": true, "stocks.csv": false, "stocks": true, "cars.json": false,
			"flights.json": false, "flights@size=5k.json": false, "flights_3m.parquet": false, "weather_list.csv": false}
		cases := []readCase{
			{"stocks.csv", "data/stocks.csv"},
			{"cars.json", "data/cars.json"},
			{"flights.json", "data/flights-2k.json"},
			{"flights@size=5k.json", "data/flights-5k.json"},
			{"flights_3m.parquet", "data/flights-3m.parquet"},
			{"weather_list.csv", "data/seattle-weather.csv"},
		}
		if b.canList {
			want["weather_parts.csv"] = false
			cases = append(cases, readCase{"weather_parts.csv", "data/seattle-weather.csv"})
		}
		checkNames(t, d.Mnt, want)
		checkReads(t, d, cases)

		var md map[string]any
		if err := json.Unmarshal(readFile(t, d.path("stocks/metadata.json")), &md); err != nil {
			t.Errorf("stocks/metadata.json: %v", err)
		} else if md["catalog_dir"] != b.base {
			t.Errorf("stocks/metadata.json: catalog_dir %v, want %s", md["catalog_dir"], b.base)
		}
		for _, p := range []string{".catalog/describe.yaml", ".catalog/metadata.json", ".catalog/errors.txt",
			"stocks/describe.yaml", "stocks/metadata.json", "flights@size=5k/describe.yaml"} {
			checkNoSecrets(t, p, string(readFile(t, d.path(p))), b.secrets)
		}
		if errs := readFile(t, d.path(".catalog/errors.txt")); len(bytes.TrimSpace(errs)) != 0 {
			t.Errorf(".catalog/errors.txt is not empty:\n%s", errs)
		}

		t.Run("pandas", func(t *testing.T) {
			needPython(t)
			pandasCompare(t, "csv", d.path("stocks.csv"), vega("data/stocks.csv"))
		})
		t.Run("duckdb", func(t *testing.T) {
			needNode(t)
			duckdbCompare(t, d.path("flights_3m.parquet"), vega("data/flights-3m.parquet"))
		})
		checkNoSecrets(t, "the daemon's log", d.Output(), b.secrets)
	})
}

// localCatalogYAML is a catalog on local disk whose sources point into the
// backend.
func localCatalogYAML(b backend) string {
	var w strings.Builder
	src := func(name, driver, urlpath, opts string, more ...string) {
		fmt.Fprintf(&w, "  %s:\n    description: %s from %s\n    driver: %s\n", name, name, b.name, driver)
		for _, m := range more {
			w.WriteString(m)
		}
		fmt.Fprintf(&w, "    args:\n      urlpath: %s\n      storage_options: %s\n", urlpath, opts)
	}
	q := func(s string) string { return fmt.Sprintf("'%s'", s) }
	w.WriteString("metadata:\n  version: 1\nsources:\n")
	src("stocks", "csv", q(b.base+"/stocks.csv"), b.opts,
		fmt.Sprintf("    metadata:\n      mirror: 'https://reader:%s@mirror.invalid/stocks.csv'\n      storage: %s\n", metadataSecret, b.opts))
	src("seattle_weather", "csv", q(b.base+"/seattle-weather.csv"), b.opts)
	src("cars", "json", q(b.base+"/cars.json"), b.opts)
	src("flights_3m", "parquet", q(b.base+"/flights-3m.parquet"), b.opts)
	src("flights", "json", q(b.base+"/flights-{{ size }}.json"), b.opts,
		"    parameters:\n      size: {description: rows, type: str, default: 2k, allowed: [2k, 5k]}\n")
	src("weather_list", "csv", fmt.Sprintf("[%s, %s, %s]", q(b.base+"/parts/seattle-weather-part1.csv"),
		q(b.base+"/parts/seattle-weather-part2.csv"), q(b.base+"/parts/seattle-weather-part3.csv")), b.opts)
	if b.canList {
		src("weather_parts", "csv", q(b.base+"/parts/seattle-weather-part*.csv"), b.opts)
		src("flights_parts", "json", q(b.base+"/flights-*.json"), b.opts)
	}
	if b.envOpts != "" {
		src("stocks_env", "csv", q(b.base+"/stocks.csv"), b.envOpts)
	}
	src("missing", "csv", q(b.base+"/no-such-object.csv"), b.opts)
	if b.badOpts != "" {
		src("denied", "csv", q(b.base+"/stocks.csv"), b.badOpts)
	}
	return w.String()
}

// remoteCatalogYAML is a catalog file that lives in the backend beside the
// data: its sources use CATALOG_DIR and name no storage_options, so they
// inherit the catalog's.
func remoteCatalogYAML(b backend) string {
	s := `metadata:
  version: 1
sources:
  stocks:
    driver: csv
    args:
      urlpath: '{{ CATALOG_DIR }}/stocks.csv'
    metadata:
      mirror: 'https://reader:` + metadataSecret + `@mirror.invalid/stocks.csv'
  cars:
    driver: json
    args:
      urlpath: '{{ CATALOG_DIR }}/cars.json'
  flights:
    driver: json
    parameters:
      size: {description: rows, type: str, default: 2k, allowed: [2k, 5k]}
    args:
      urlpath: '{{ CATALOG_DIR }}/flights-{{ size }}.json'
  flights_3m:
    driver: parquet
    args:
      urlpath: '{{ CATALOG_DIR }}/flights-3m.parquet'
  weather_list:
    driver: csv
    args:
      urlpath:
        - '{{ CATALOG_DIR }}/parts/seattle-weather-part1.csv'
        - '{{ CATALOG_DIR }}/parts/seattle-weather-part2.csv'
        - '{{ CATALOG_DIR }}/parts/seattle-weather-part3.csv'
`
	if b.canList {
		s += `  weather_parts:
    driver: csv
    args:
      urlpath: '{{ CATALOG_DIR }}/parts/seattle-weather-part*.csv'
`
	}
	return s
}

// checkNames checks that dir lists (at least) the wanted names, each a
// directory or a file as wanted.
func checkNames(t *testing.T, dir string, want map[string]bool) {
	t.Helper()
	got := readDirNames(t, dir)
	for name, isDir := range want {
		mode, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s does not list %s (it lists %v)", dir, name, sortedKeys(got))
		case mode.IsDir() != isDir:
			t.Errorf("%s: %s has mode %v, want a directory: %v", dir, name, mode, isDir)
		}
	}
}

// checkReads stats each mounted file (its size must be the original's) and
// reads it with plain reads, comparing the bytes.
func checkReads(t *testing.T, d *daemon, cases []readCase) {
	t.Helper()
	for _, c := range cases {
		want, err := os.ReadFile(vega(c.original))
		if err != nil {
			t.Fatal(err)
		}
		fi, err := withTimeout(t, "stat "+c.mounted, func() (os.FileInfo, error) { return os.Stat(d.path(c.mounted)) })
		if err != nil {
			t.Errorf("stat %s: %v", c.mounted, err)
			continue
		}
		if fi.Size() != int64(len(want)) {
			t.Errorf("stat %s: size %d, want %d (%s)", c.mounted, fi.Size(), len(want), c.original)
		}
		got, err := withTimeout(t, "read "+c.mounted, func() ([]byte, error) { return os.ReadFile(d.path(c.mounted)) })
		if err != nil {
			t.Errorf("read %s: %v", c.mounted, err)
			continue
		}
		if diff := sameBytes(got, want); diff != "" {
			t.Errorf("%s differs from %s: %s", c.mounted, c.original, diff)
		}
	}
}

// checkParquetFooter reads a Parquet file's footer with pread, as a reader
// of its schema does.
func checkParquetFooter(t *testing.T, mounted, original string) {
	t.Helper()
	want, err := os.ReadFile(original)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(want))
	got, err := withTimeout(t, "pread footer", func() ([]byte, error) { return preadAt(mounted, n-8, 8) })
	if err != nil {
		t.Errorf("pread the last 8 bytes of %s: %v", mounted, err)
		return
	}
	if !bytes.Equal(got, want[n-8:]) || !bytes.HasSuffix(got, []byte("PAR1")) {
		t.Errorf("%s: footer %q, want %q", mounted, got, want[n-8:])
	}
}

// logLineWith reports whether one line of a log holds all the words.
func logLineWith(log string, words ...string) bool {
	for _, line := range strings.Split(log, "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			return true
		}
	}
	return false
}

// checkNoSecrets fails when text shows any of the secrets.
func checkNoSecrets(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			i := strings.Index(text, s)
			lo, hi := max(0, i-120), min(len(text), i+len(s)+40)
			t.Errorf("%s shows the secret %q: …%s…", what, s, text[lo:hi])
		}
	}
}

// openAndRead opens path and reads it to the end. It returns how long that
// took and the first error; a call that has not returned after limit (plus
// a grace) gives an error saying so. Safe to call from any goroutine.
func openAndRead(path string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	ch := make(chan error, 1)
	go func() { // left behind if it hangs; the daemon's shutdown ends it
		f, err := os.Open(path)
		if err != nil {
			ch <- err
			return
		}
		defer f.Close()
		_, err = io.Copy(io.Discard, f)
		ch <- err
	}()
	select {
	case err := <-ch:
		return time.Since(start), err
	case <-time.After(limit + 5*time.Second):
		return time.Since(start), fmt.Errorf("reading %s: no answer after %v", path, limit+5*time.Second)
	}
}

// pandasCompare reads a mounted file and its original with pandas.
func pandasCompare(t *testing.T, kind, mounted, original string) {
	t.Helper()
	script, _ := filepath.Abs("testdata/pandas_compare.py")
	r := run(t, toolTimeout, "", pythonBin, script, kind, mounted, original)
	if r.err != nil {
		t.Errorf("pandas on %s: %v\n%s%s", mounted, r.err, r.stdout, tail(r.stderr, 20))
		return
	}
	var got struct {
		MountedShape  []int `json:"mounted_shape"`
		OriginalShape []int `json:"original_shape"`
		Equal         bool  `json:"equal"`
	}
	if err := json.Unmarshal([]byte(lastLine(r.stdout)), &got); err != nil {
		t.Errorf("pandas output %q: %v", r.stdout, err)
		return
	}
	if !got.Equal {
		t.Errorf("pandas: %s (shape %v) != %s (shape %v)", mounted, got.MountedShape, original, got.OriginalShape)
	}
}

// duckdbCompare queries a mounted file and its original with DuckDB.
func duckdbCompare(t *testing.T, mounted, original string) {
	t.Helper()
	r := run(t, toolTimeout, "", "node", filepath.Join(repoRoot, "scripts", "node", "compare.mjs"), mounted, original)
	switch r.exitCode {
	case 0:
	case 1:
		t.Errorf("DuckDB sees %s and %s differently:\n%s", mounted, original, r.stdout)
	default:
		t.Errorf("DuckDB on %s: %v\n%s%s", mounted, r.err, r.stdout, tail(r.stderr, 20))
	}
}

// TestRemoteDeadServer: sources on servers where nothing listens, or that
// accept connections and never answer, give their reader EIO within a
// bounded time (the retries and timeouts of the mount's flags), the log
// says which URL, and the daemon keeps serving.
func TestRemoteDeadServer(t *testing.T) {
	needVega(t)
	remoteEnv(t)
	dead, hung := deadAddr(t), blackHole(t)
	s3opts := func(addr string) string {
		return fmt.Sprintf("{key: AKIAIDEAD, secret: itest-dead-secret-77aa, client_kwargs: {endpoint_url: 'http://%s'}}", addr)
	}
	gsopts := func(addr string) string { return fmt.Sprintf("{token: anon, endpoint_url: 'http://%s'}", addr) }
	var w strings.Builder
	w.WriteString("sources:\n")
	src := func(name, urlpath, opts string) {
		fmt.Fprintf(&w, "  %s:\n    driver: csv\n    args:\n      urlpath: '%s'\n      storage_options: %s\n", name, urlpath, opts)
	}
	type deadCase struct{ name, url string }
	var cases []deadCase
	for _, s := range []struct{ kind, addr string }{{"refused", dead}, {"hung", hung}} {
		src("s3_"+s.kind, "s3://demo/stocks.csv", s3opts(s.addr))
		src("gs_"+s.kind, "gs://demo/stocks.csv", gsopts(s.addr))
		src("http_"+s.kind, "http://"+s.addr+"/demo/stocks.csv", "{}")
		cases = append(cases, deadCase{"s3_" + s.kind, "s3://demo/stocks.csv"},
			deadCase{"gs_" + s.kind, "gs://demo/stocks.csv"}, deadCase{"http_" + s.kind, "http://" + s.addr + "/demo/stocks.csv"})
	}
	fmt.Fprintf(&w, "  local:\n    driver: csv\n    args:\n      urlpath: '%s'\n", vega("data/stocks.csv"))
	catPath := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(catPath, []byte(w.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	d := mount(t, catPath, boundedFlags...)

	// All at once: one dead server must not hold up readers of others.
	var wg sync.WaitGroup
	errs := make([]error, len(cases))
	took := make([]time.Duration, len(cases))
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			took[i], errs[i] = openAndRead(d.path(c.name+".csv"), failureBound)
		}()
	}
	// A local file of the same catalog, read while those fail, does not
	// wait for them all: at most about one retry budget (3s), not their sum.
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	local, err := withTimeout(t, "read local.csv", func() ([]byte, error) { return os.ReadFile(d.path("local.csv")) })
	localTook := time.Since(start)
	if err != nil {
		t.Errorf("local.csv while remote reads fail: %v", err)
	}
	t.Logf("local.csv read in %v while the remote reads failed", localTook.Round(time.Millisecond))
	if localTook > localBound {
		t.Errorf("reading local.csv took %v while %d remote sources of its catalog failed: more than %v", localTook.Round(time.Millisecond), len(cases), localBound)
	}
	wg.Wait()
	for i, c := range cases {
		t.Logf("%s.csv: %v after %v", c.name, errs[i], took[i].Round(time.Millisecond))
		if !errors.Is(errs[i], syscall.EIO) {
			t.Errorf("%s.csv (%s): got %v, want EIO", c.name, c.url, errs[i])
		}
		if took[i] > failureBound {
			t.Errorf("%s.csv: the failure took %v, more than %v", c.name, took[i], failureBound)
		}
	}
	want, _ := os.ReadFile(vega("data/stocks.csv"))
	if diff := sameBytes(local, want); diff != "" {
		t.Errorf("local.csv: %s", diff)
	}
	// Still serving, and the log names the URLs that failed.
	if got := readFile(t, d.path("local.csv")); !bytes.Equal(got, want) {
		t.Errorf("local.csv after the failures differs from the original")
	}
	out := d.Output()
	for _, addr := range []string{dead, hung} {
		if !strings.Contains(out, addr) {
			t.Errorf("the daemon's log never names %s:\n%s", addr, tail(out, 30))
		}
	}
	checkNoSecrets(t, "the daemon's log", out, []string{"itest-dead-secret-77aa"})
}

// TestRemoteServerDiesMidRead: an HTTP server that sends part of a large
// body — its Content-Length promises more — and then stalls, or closes the
// connection. The reader gets EIO within a bounded time, never a short
// file or a hang, and the daemon keeps serving other files, from the same
// server and from local disk.
func TestRemoteServerDiesMidRead(t *testing.T) {
	needVega(t)
	remoteEnv(t)
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = byte('a' + i%26)
		if i%64 == 63 {
			big[i] = '\n'
		}
	}
	stocks, err := os.ReadFile(vega("data/stocks.csv"))
	if err != nil {
		t.Fatal(err)
	}
	srv := startDyingServer(t, 3<<20, map[string]dyingFile{
		"/stall.txt":  {data: big, mode: "stall"},
		"/close.txt":  {data: big, mode: "close"},
		"/stocks.csv": {data: stocks},
	})
	cat := fmt.Sprintf(`sources:
  stall:
    driver: textfiles
    args: {urlpath: '%[1]s/stall.txt'}
  close:
    driver: textfiles
    args: {urlpath: '%[1]s/close.txt'}
  stocks:
    driver: csv
    args: {urlpath: '%[1]s/stocks.csv'}
  local:
    driver: csv
    args: {urlpath: '%[2]s'}
`, srv.URL, vega("data/stocks.csv"))
	catPath := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(catPath, []byte(cat), 0o644); err != nil {
		t.Fatal(err)
	}
	d := mount(t, catPath, boundedFlags...)

	for _, name := range []string{"stall", "close"} {
		t.Run(name, func(t *testing.T) {
			if fi := statFile(t, d.path(name+".txt")); fi.Size() != int64(len(big)) {
				t.Errorf("stat %s.txt: size %d, want %d", name, fi.Size(), len(big))
			}
			took, err := openAndRead(d.path(name+".txt"), failureBound)
			t.Logf("%s.txt: %v after %v (%d responses cut short)", name, err, took.Round(time.Millisecond), srv.cutResponses("/"+name+".txt"))
			if !errors.Is(err, syscall.EIO) {
				t.Errorf("reading %s.txt from a server that dies mid-body: got %v, want EIO", name, err)
			}
			if took > failureBound {
				t.Errorf("%s.txt: the failure took %v, more than %v", name, took, failureBound)
			}
			if srv.cutResponses("/"+name+".txt") == 0 {
				t.Errorf("%s.txt: the server never cut a response short: the test proves nothing", name)
			}
			stillServes(t, d, stocks)
		})
	}
}

// stillServes: after a remote failure the daemon still serves the same
// server's stocks.csv, the local copy local.csv (both equal to stocks) and
// a listing of the root.
func stillServes(t *testing.T, d *daemon, stocks []byte) {
	t.Helper()
	if got := readFile(t, d.path("stocks.csv")); !bytes.Equal(got, stocks) {
		t.Errorf("stocks.csv (same server) after the failure: %s", sameBytes(got, stocks))
	}
	if got := readFile(t, d.path("local.csv")); !bytes.Equal(got, stocks) {
		t.Errorf("local.csv after the failure: %s", sameBytes(got, stocks))
	}
	readDirNames(t, d.Mnt)
}
