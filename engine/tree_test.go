package engine

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const demoCat = `
name: demo
description: test catalog
metadata:
  version: 1
  parameters:
    bucket: {description: b, type: str, default: main}
plugins:
  source:
    - module: intake_parquet
sources:
  one:
    description: one csv
    driver: csv
    args: {urlpath: '{{ CATALOG_DIR }}/data/one.csv'}
    metadata: {title: 'One in {{ bucket }}'}
  gz:
    driver: intake.source.csv.CSVSource
    args: {urlpath: '{{ CATALOG_DIR }}/data/two.csv.gz'}
  many:
    driver: [csv, other.Driver]
    args: {urlpath: '{{ CATALOG_DIR }}/data/part*.csv'}
  pq:
    driver:
      first: {class: intake_parquet.source.ParquetSource, args: {engine: pyarrow}}
      second: {class: other.Parquet}
    args: {urlpath: '{{ CATALOG_DIR }}/data/p*.parquet'}
  flights:
    driver: json
    parameters:
      size: {description: s, type: str, default: 2k, allowed: [2k, 5k]}
    args: {urlpath: '{{ CATALOG_DIR }}/data/f-{{ size }}.json'}
  ver:
    driver: textfiles
    parameters:
      version: {description: v, type: str, default: "1.0"}
    args: {urlpath: '{{ CATALOG_DIR }}/data/v{{ version }}.txt'}
  nodata:
    driver: sql
    args: {uri: ''}
  sub:
    driver: yaml_file_cat
    args: {path: '{{ CATALOG_DIR }}/sub.yaml'}
  "odd/name@x":
    driver: csv
    args: {urlpath: '{{ CATALOG_DIR }}/data/one.csv'}
`

const subCat = `
metadata:
  parameters:
    region: {description: r, type: str, default: eu}
sources:
  inner:
    driver: csv
    args: {urlpath: '{{ CATALOG_DIR }}/data/{{ bucket }}-{{ region }}.csv'}
`

func demoFS(t *testing.T) *FS {
	dir := writeTree(t, map[string]string{
		"cat.yaml":         demoCat,
		"sub.yaml":         subCat,
		"data/one.csv":     "a,b\n1,2\n",
		"data/two.csv.gz":  "not really gzip",
		"data/part1.csv":   "a,b\n1,2\n",
		"data/part2.csv":   "a,b\n3,4",
		"data/part3.csv":   "a,b\n5,6\n",
		"data/p1.parquet":  "PAR1",
		"data/p2.parquet":  "PAR1",
		"data/f-2k.json":   "[2]",
		"data/f-5k.json":   "[5]",
		"data/v1.0.txt":    "one point oh\n",
		"data/v1.2.txt":    "one point two\n",
		"data/main-eu.csv": "x\nmain-eu\n",
		"data/prod-eu.csv": "x\nprod-eu\n",
		"data/prod-us.csv": "x\nprod-us\n",
	})
	return newFS(t, dir, "cat.yaml")
}

func TestListing(t *testing.T) {
	f := demoFS(t)
	got := names(t, f, "")
	want := []string{".catalog/", "flights/", "flights.json", "flights@size=5k.json", "gz/", "gz.csv",
		"many/", "many.csv", "nodata/", "odd%2Fname%40x/", "odd%2Fname%40x.csv", "one/", "one.csv",
		"pq/", "pq.parquet/", "sub/", "ver/", "ver.txt"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("listing:\n got %v\nwant %v", got, want)
	}
	if got := names(t, f, "one"); !reflect.DeepEqual(got, []string{"describe.yaml", "metadata.json"}) {
		t.Fatalf("source dir: %v", got)
	}
	if got := names(t, f, "pq.parquet"); !reflect.DeepEqual(got, []string{"p1.parquet", "p2.parquet"}) {
		t.Fatalf("parts dir: %v", got)
	}
	if got := names(t, f, ".catalog"); !reflect.DeepEqual(got, []string{"describe.yaml", "metadata.json", "errors.txt"}) {
		t.Fatalf(".catalog: %v", got)
	}
	if e := mustRead(t, f, ".catalog/errors.txt"); e != "" {
		t.Fatalf("errors.txt not empty: %q", e)
	}
}

func TestReadData(t *testing.T) {
	f := demoFS(t)
	cases := []struct{ path, want string }{
		{"one.csv", "a,b\n1,2\n"},
		{"odd%2Fname%40x.csv", "a,b\n1,2\n"},
		// the header is kept once; a part without a final newline gets one
		{"many.csv", "a,b\n1,2\n3,4\n5,6\n"},
		{"flights.json", "[2]"},
		{"flights@size=5k.json", "[5]"},
		{"flights@size=2k.json", "[2]"},
		{"ver@version=1.2.txt", "one point two\n"},
		{"pq.parquet/p2.parquet", "PAR1"},
		{"sub/inner.csv", "x\nmain-eu\n"},
		{"sub@bucket=prod/inner.csv", "x\nprod-eu\n"},
		{"sub@region=us@bucket=prod/inner.csv", "x\nprod-us\n"},
		{"sub/inner@bucket=prod@region=us.csv", "x\nprod-us\n"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			if got := mustRead(t, f, c.path); got != c.want {
				t.Fatalf("got %q want %q", got, c.want)
			}
			n, _ := f.Walk(context.Background(), c.path)
			st, err := n.(File).Stat(context.Background())
			if err != nil || st.Size != int64(len(c.want)) {
				t.Fatalf("stat size %d err %v, want %d", st.Size, err, len(c.want))
			}
		})
	}
}

func TestSameIdentityAnyOrder(t *testing.T) {
	f := demoFS(t)
	ctx := context.Background()
	a, err := f.Walk(ctx, "sub/inner@bucket=prod@region=us.csv")
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.Walk(ctx, "sub/inner@region=us@bucket=prod.csv")
	if err != nil {
		t.Fatal(err)
	}
	if a.Ino() != b.Ino() {
		t.Fatal("same values in another order gave another inode")
	}
	c, _ := f.Walk(ctx, "flights@size=2k.json")
	d, _ := f.Walk(ctx, "flights.json")
	if c.Ino() != d.Ino() {
		t.Fatal("explicit default differs from the default")
	}
	e, _ := f.Walk(ctx, "flights@size=5k.json")
	if e.Ino() == d.Ino() {
		t.Fatal("different values share an inode")
	}
	// a listed variant and the same values with an inherited default
	// spelled out, in either order
	for _, p := range []string{"flights@size=5k@bucket=main.json", "flights@bucket=main@size=5k.json"} {
		g, err := f.Walk(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if g.Ino() != e.Ino() {
			t.Errorf("%s: inode %d, flights@size=5k.json has %d", p, g.Ino(), e.Ino())
		}
	}
}

func TestLookupErrors(t *testing.T) {
	f := demoFS(t)
	cases := []struct {
		path     string
		notFound bool
		param    string // substring of the ParamError
	}{
		{path: "missing.csv", notFound: true},
		{path: "one.txt", notFound: true},
		{path: "missing@x=1.csv", notFound: true},
		{path: "flights@size=9k.json", param: "size=9k is not one of the allowed values: 2k,5k"},
		{path: "flights@nope=1.json", param: `unknown parameter "nope"`},
		{path: "flights@size.json", param: "malformed parameter"},
		{path: "flights@size=2k@size=5k.json", param: "given twice"},
		{path: "flights@size=%zz.json", param: "bad percent-escape"},
		{path: "sub@nope=1", param: `unknown parameter "nope"`},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			_, err := f.Walk(context.Background(), c.path)
			if err == nil {
				t.Fatal("no error")
			}
			if c.notFound && !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("want not-found, got %v", err)
			}
			if c.param != "" && (!isParamErr(err) || !strings.Contains(err.Error(), c.param)) {
				t.Fatalf("want param error %q, got %T %v", c.param, err, err)
			}
		})
	}
}

func TestDescribeRendered(t *testing.T) {
	f := demoFS(t)
	out, err := f.Describe(context.Background(), "one")
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{"urlpath: " + f.Loader.Cwd + "//data/one.csv", "title: One in main", "driver: csv", "parameters_used:"} {
		if !strings.Contains(s, want) {
			t.Errorf("describe.yaml lacks %q:\n%s", want, s)
		}
	}
	md := mustRead(t, f, "one@bucket=prod/metadata.json")
	if !strings.Contains(md, `"title": "One in prod"`) || !strings.Contains(md, `"catalog_dir": "`+f.Loader.Cwd+`/"`) {
		t.Errorf("metadata.json: %s", md)
	}
	// the named-driver form adds the first driver's own args, as Intake does
	pq, err := f.Describe(context.Background(), "pq")
	if err != nil || !strings.Contains(string(pq), "engine: pyarrow") {
		t.Errorf("pq describe: %v\n%s", err, pq)
	}
}

func TestBrokenEntriesKeepTheRest(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"cat.yaml": `sources:
  good:
    driver: csv
    args: {urlpath: '{{ CATALOG_DIR }}/x.csv'}
  notamap: 12
  nodriver:
    args: {}
  badparam:
    driver: csv
    parameters:
      p: {description: d, type: nosuchtype}
    args: {}
  dup:
    driver: csv
  dup:
    driver: json
  baddefault:
    driver: csv
    parameters:
      n: {description: d, type: int, default: 5, min: 10}
    args: {urlpath: 'x{{ n }}.csv'}
  missingdata:
    driver: csv
    args: {urlpath: '{{ CATALOG_DIR }}/nothere.csv'}
`,
		"x.csv": "a\n1\n",
	})
	f := newFS(t, dir, "cat.yaml")
	got := names(t, f, "")
	want := []string{".catalog/", "baddefault/", "baddefault.csv", "good/", "good.csv", "missingdata/", "missingdata.csv"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("listing %v, want %v", got, want)
	}
	errs := mustRead(t, f, ".catalog/errors.txt")
	for _, w := range []string{
		"cat.yaml:5: source \"notamap\": value must be a dictionary",
		"cat.yaml:6: source \"nodriver\": missing required key 'driver'",
		"cat.yaml:11: source \"badparam\": parameter \"p\": value 'nosuchtype' is invalid",
		"cat.yaml:15: source \"dup\": duplicate key \"dup\"",
		"source \"baddefault\": with its default parameters: n=5 is less than 10",
	} {
		if !strings.Contains(errs, w) {
			t.Errorf("errors.txt lacks %q:\n%s", w, errs)
		}
	}
	if got := mustRead(t, f, "good.csv"); got != "a\n1\n" {
		t.Fatalf("good.csv: %q", got)
	}
	if _, err := readPath(t, f, "baddefault.csv"); err == nil || !strings.Contains(err.Error(), "n=5 is less than 10") {
		t.Fatalf("baddefault.csv: %v", err)
	}
	if _, err := f.Describe(context.Background(), "baddefault"); err == nil {
		t.Fatal("describe of invalid defaults succeeded")
	}
	// valid values get past validation to the (missing) data
	if _, err := readPath(t, f, "baddefault@n=12.csv"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "x12.csv") {
		t.Fatalf("baddefault@n=12.csv: %v", err)
	}
	if _, err := readPath(t, f, "missingdata.csv"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing data: %v", err)
	}
}

func TestWholeFileErrors(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"list.yaml":  "- a\n- b\n",
		"bad.yaml":   "sources: {a: [\n",
		"empty.yaml": "",
		"dup.yaml":   "sources: {}\nsources: {}\n",
	})
	for _, c := range []struct{ file, want string }{
		{"list.yaml", "list.yaml:1: catalog must be a dictionary"},
		{"bad.yaml", "bad.yaml: "},
		{"empty.yaml", "no YAML data"},
		{"dup.yaml", "dup.yaml:2: duplicate key \"sources\""},
		{"missing.yaml", "no such file or directory"},
	} {
		_, err := New(dir+"/"+c.file, Options{Cwd: dir})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.file, err, c.want)
		}
	}
}

func TestDirectoryAndGlobCatalogs(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"cats/a.yaml":   "sources: {s1: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/d.csv'}}}\n",
		"cats/b.yml":    "sources: {s2: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/d.csv'}}, s1: {driver: csv}}\n",
		"cats/notes.md": "not a catalog",
		"cats/d.csv":    "h\n1\n",
		"nested.yaml":   "sources: {all: {driver: yaml_files_cat, args: {path: '{{ CATALOG_DIR }}/cats/*.y*ml'}}}\n",
	})
	for _, root := range []string{"cats", "cats/*.y*ml"} {
		f := newFS(t, dir, root)
		if got := names(t, f, ""); !reflect.DeepEqual(got, []string{".catalog/", "s1/", "s1.csv", "s2/", "s2.csv"}) {
			t.Fatalf("%s: %v", root, got)
		}
		if e := mustRead(t, f, ".catalog/errors.txt"); !strings.Contains(e, "conflicting names") {
			t.Fatalf("%s: errors %q", root, e)
		}
	}
	f := newFS(t, dir, "nested.yaml")
	if got := mustRead(t, f, "all/s2.csv"); got != "h\n1\n" {
		t.Fatalf("nested files cat: %q", got)
	}
}

func TestBrokenNestedCatalog(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"cat.yaml": "sources:\n  sub: {driver: yaml_file_cat, args: {path: '{{ CATALOG_DIR }}/sub.yaml'}}\n  ok: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/d.csv'}}\n",
		"sub.yaml": "sources: [1, 2\n",
		"d.csv":    "x\n",
	})
	f := newFS(t, dir, "cat.yaml")
	if got := names(t, f, "sub"); !reflect.DeepEqual(got, []string{".catalog/"}) {
		t.Fatalf("broken nested: %v", got)
	}
	if e := mustRead(t, f, "sub/.catalog/errors.txt"); !strings.Contains(e, "sub.yaml") {
		t.Fatalf("errors: %q", e)
	}
	if got := mustRead(t, f, "ok.csv"); got != "x\n" {
		t.Fatal(got)
	}
}

func TestReload(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"cat.yaml": "sources: {a: {driver: csv, args: {urlpath: x.csv}}}\n",
	})
	f := newFS(t, dir, "cat.yaml")
	f.Loader.RecheckInterval = 0
	f.TTL = 0
	if got := names(t, f, ""); !reflect.DeepEqual(got, []string{".catalog/", "a/", "a.csv"}) {
		t.Fatal(got)
	}
	writeFile(t, dir+"/cat.yaml", "sources: {b: {driver: csv, args: {urlpath: xx.csv}}}\n")
	if got := names(t, f, ""); !reflect.DeepEqual(got, []string{".catalog/", "b/", "b.csv"}) {
		t.Fatal(got)
	}
}

// An edited catalog gives its generated files new inode numbers, so the
// kernel never shows the old text under an inode it still holds.
func TestReloadNewInodes(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"cat.yaml": "sources: {a: {description: old, driver: csv, args: {urlpath: x.csv}}}\n",
	})
	f := newFS(t, dir, "cat.yaml")
	f.Loader.RecheckInterval = 0
	f.TTL = 0
	ctx := context.Background()
	before, err := f.Walk(ctx, "a/describe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s := mustRead(t, f, "a/describe.yaml"); !strings.Contains(s, "description: old") {
		t.Fatal(s)
	}
	writeFile(t, dir+"/cat.yaml", "sources: {a: {description: new text, driver: csv, args: {urlpath: x.csv}}}\n")
	after, err := f.Walk(ctx, "a/describe.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s := mustRead(t, f, "a/describe.yaml"); !strings.Contains(s, "description: new text") {
		t.Fatal(s)
	}
	if before.Ino() == after.Ino() {
		t.Fatal("describe.yaml kept its inode number across an edit")
	}
}

// One inode is one version of the data: a file changed behind a looked-up
// node is refused (ESTALE, so the kernel looks the name up again), and the
// new lookup is a new inode with the new bytes.
func TestChangedDataIsStale(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"cat.yaml": "sources: {a: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/x.csv'}}}\n",
		"x.csv":    "h\n1\n",
	})
	f := newFS(t, dir, "cat.yaml")
	f.TTL = 0
	ctx := context.Background()
	old, err := f.Walk(ctx, "a.csv")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir+"/x.csv", "h\n1\n2\n")
	if _, err := old.(File).Open(ctx); !errors.Is(err, ErrStale) {
		t.Fatalf("open of the old version: %v", err)
	}
	st, _ := old.(File).Stat(ctx)
	if st.Size != 4 {
		t.Fatalf("old inode's size changed to %d", st.Size)
	}
	cur, err := f.Walk(ctx, "a.csv")
	if err != nil {
		t.Fatal(err)
	}
	if cur.Ino() == old.Ino() {
		t.Fatal("new version has the old inode number")
	}
	if got := mustRead(t, f, "a.csv"); got != "h\n1\n2\n" {
		t.Fatalf("new version: %q", got)
	}
}

func TestNestedCycles(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"a.yaml": "sources:\n  self: {driver: yaml_file_cat, args: {path: '{{ CATALOG_DIR }}/a.yaml'}}\n  b: {driver: yaml_file_cat, args: {path: '{{ CATALOG_DIR }}/b.yaml'}}\n",
		"b.yaml": "sources:\n  back: {driver: yaml_file_cat, args: {path: '{{ CATALOG_DIR }}/a.yaml'}}\n",
	})
	f := newFS(t, dir, "a.yaml")
	if got := names(t, f, "self"); !reflect.DeepEqual(got, []string{".catalog/"}) {
		t.Fatalf("self-inclusion shows %v", got)
	}
	if e := mustRead(t, f, "self/.catalog/errors.txt"); !strings.Contains(e, "cycle") {
		t.Fatalf("errors: %q", e)
	}
	if got := names(t, f, "b/back"); !reflect.DeepEqual(got, []string{".catalog/"}) {
		t.Fatalf("a -> b -> a shows %v", got)
	}
}

func TestDescribeRedactsSecrets(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"cat.yaml": `sources:
  s:
    driver: csv
    args:
      urlpath: 'https://user:hunter2@example.com/x.csv?X-Amz-Signature=abcdef'
      storage_options: {key: AKIAEXAMPLE, secret: s3cr3tvalue, client_kwargs: {aws_secret_access_key: alsosecret}, headers: {Authorization: Bearer tok123}}
    metadata: {password: pw456}
`,
	})
	f := newFS(t, dir, "cat.yaml")
	desc, err := f.Describe(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	md := mustRead(t, f, "s/metadata.json")
	for _, secret := range []string{"hunter2", "abcdef", "AKIAEXAMPLE", "s3cr3tvalue", "alsosecret", "tok123", "pw456"} {
		if strings.Contains(string(desc), secret) || strings.Contains(md, secret) {
			t.Errorf("secret %q shown:\n%s\n%s", secret, desc, md)
		}
	}
	if !strings.Contains(string(desc), "example.com/x.csv") {
		t.Errorf("redaction lost the URL:\n%s", desc)
	}
}

// metadata.json writes &, < and > as they are, as Python's json does.
func TestMetadataJSONNoHTMLEscapes(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "cat.yaml"), "sources:\n  s:\n    driver: csv\n    args: {urlpath: x.csv}\n    metadata: {note: 'a & b <c>'}\n")
	f := newFS(t, dir, "cat.yaml")
	got := mustRead(t, f, "s/metadata.json")
	if !strings.Contains(got, `"note": "a & b <c>"`) {
		t.Errorf("metadata.json:\n%s", got)
	}
}

// A YAML syntax error names the line PyYAML names (yaml.v3 counts its
// parser errors' lines from 0): where the unfinished construct starts, or
// where the problem is.
func TestYAMLSyntaxErrorLines(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"sources:\n  a:\n    driver: csv\n    args: {x: 1\n  b: 2\n", "line 4: did not find expected ',' or '}'"},
		{"sources:\n  a: [1, 2\n", "line 2: did not find expected ',' or ']'"},
		{"sources:\n  a: 1\n b: 2\n", "line 3: did not find expected key"},
		{"a: 1\n- b\n", "line 2: did not find expected key"},
		{"a: @x\n", "line 1: found character that cannot start any token"},
	} {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "cat.yaml"), c.text)
		_, err := New(filepath.Join(dir, "cat.yaml"), Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one with %q", c.text, err, c.want)
		}
	}
}

// A .catalog node held since before an edit (go-fuse keeps the first node
// of an inode number) describes the catalog as it is now, and a nested
// catalog that failed to load has no stats.json of the root.
func TestCatalogFilesFollowEdits(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"cat.yaml": "description: first\nmetadata: {v: 1}\nsources:\n  sub: {driver: yaml_file_cat, args: {path: '{{ CATALOG_DIR }}/nosuch.yaml'}}\n",
	})
	f := newFS(t, dir, "cat.yaml")
	f.Loader.RecheckInterval = 0
	f.TTL = 0
	f.stats = func() any { return map[string]int{"Reads": 0} } // the root shows stats.json
	held, err := f.Walk(context.Background(), ".catalog")
	if err != nil {
		t.Fatal(err)
	}
	read := func(d Dir, name string) string {
		t.Helper()
		n, err := lookupIn(context.Background(), d, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var b strings.Builder
		if _, err := ReadAll(context.Background(), n.(File), &b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if got := read(held.(Dir), "describe.yaml"); !strings.Contains(got, "description: first") {
		t.Fatalf("before the edit: %s", got)
	}
	writeFile(t, filepath.Join(dir, "cat.yaml"), "description: second\nmetadata: {v: 2}\nsources: {}\n")
	if got := read(held.(Dir), "describe.yaml"); !strings.Contains(got, "description: second") {
		t.Errorf("describe.yaml of the node held since before the edit: %s", got)
	}
	if got := read(held.(Dir), "metadata.json"); !strings.Contains(got, `"v": 2`) {
		t.Errorf("metadata.json of the node held since before the edit: %s", got)
	}

	writeFile(t, filepath.Join(dir, "cat.yaml"), "sources:\n  sub: {driver: yaml_file_cat, args: {path: '{{ CATALOG_DIR }}/nosuch.yaml'}}\n")
	if got := names(t, f, ".catalog"); !reflect.DeepEqual(got, []string{"describe.yaml", "metadata.json", "errors.txt", "stats.json"}) {
		t.Errorf("the root's .catalog: %v", got)
	}
	if got := names(t, f, "sub/.catalog"); !reflect.DeepEqual(got, []string{"describe.yaml", "metadata.json", "errors.txt"}) {
		t.Errorf("the .catalog of a nested catalog that failed: %v", got)
	}
}
