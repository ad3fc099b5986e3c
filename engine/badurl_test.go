package engine

import (
	"reflect"
	"strings"
	"testing"
)

// A data argument that is set but is no path (a number, a mapping, a list
// with other things in it) leaves the source without a data file, and
// errors.txt says which argument and value, with file and line.
func TestDataArgumentNotAPath(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"cat.yaml": `sources:
  lst:
    driver: csv
    args: {urlpath: [1, 2]}
  mp:
    driver: csv
    args: {urlpath: {a: 1}}
  num:
    driver: csv
    args: {urlpath: 3}
  good:
    driver: csv
    args: {urlpath: '{{ CATALOG_DIR }}/d.csv'}
`,
		"d.csv": "a\n1\n",
	})
	f := newFS(t, dir, "cat.yaml")
	want := []string{".catalog/", "good/", "good.csv", "lst/", "mp/", "num/"}
	if got := names(t, f, ""); !reflect.DeepEqual(got, want) {
		t.Fatalf("root: %v, want %v", got, want)
	}
	errs := mustRead(t, f, ".catalog/errors.txt")
	for _, w := range []string{
		`cat.yaml:2: source "lst": argument urlpath is [1, 2], not a path`,
		`cat.yaml:5: source "mp": argument urlpath is {'a': 1}, not a path`,
		`cat.yaml:8: source "num": argument urlpath is 3, not a path`,
	} {
		if !strings.Contains(errs, w) {
			t.Errorf("errors.txt lacks %q:\n%s", w, errs)
		}
	}
	if strings.Contains(errs, `"good"`) {
		t.Errorf("errors.txt names the good source:\n%s", errs)
	}
}

// A glob or directory of catalogs that holds no catalog file is an empty
// catalog, as in Intake, whose errors.txt says why.
func TestEmptyGlobCatalogSaysSo(t *testing.T) {
	dir := writeTree(t, map[string]string{"empty/README": "no catalogs here\n"})
	for _, root := range []string{"nope*.yaml", "empty"} {
		f := newFS(t, dir, root)
		if got := names(t, f, ""); !reflect.DeepEqual(got, []string{".catalog/"}) {
			t.Errorf("%s: root lists %v, want only .catalog/", root, got)
		}
		if errs := mustRead(t, f, ".catalog/errors.txt"); !strings.Contains(errs, root+": no catalog file (*.yaml, *.yml) found") {
			t.Errorf("%s: errors.txt does not say no catalog file was found:\n%s", root, errs)
		}
	}
}

// Sources "x" and "x.csv": the second's directory would be x.csv/ beside
// the first's data x.csv, so the second is left out whole (not its
// directory alone with its data x.csv.csv still shown), and errors.txt
// says so.
func TestNameTakenHidesWholeSource(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"cat.yaml": `sources:
  x:
    driver: csv
    args: {urlpath: '{{ CATALOG_DIR }}/d.csv'}
  x.csv:
    driver: csv
    args: {urlpath: '{{ CATALOG_DIR }}/d.csv'}
`,
		"d.csv": "a\n1\n",
	})
	f := newFS(t, dir, "cat.yaml")
	want := []string{".catalog/", "x/", "x.csv"}
	if got := names(t, f, ""); !reflect.DeepEqual(got, want) {
		t.Fatalf("root: %v, want %v", got, want)
	}
	if errs := mustRead(t, f, ".catalog/errors.txt"); !strings.Contains(errs, `source "x.csv": the name "x.csv" is taken by another entry; not shown`) {
		t.Errorf("errors.txt:\n%s", errs)
	}
}

// Each line of errors.txt names its file (and line, and source) once.
func TestErrorsNameTheirPlaceOnce(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"cats/a.yaml": "sources:\n  bad:\n    driver: csv\n    args: {urlpath: '{{ 1/0 }}.csv'}\n",
		"cats/b.yaml": "",
	})
	f := newFS(t, dir, "cats")
	errs := mustRead(t, f, ".catalog/errors.txt")
	for _, place := range []string{`a.yaml:2: source "bad"`, "b.yaml:"} {
		if n := strings.Count(errs, place); n != 1 {
			t.Errorf("%q appears %d times, want once:\n%s", place, n, errs)
		}
	}
	if !strings.Contains(errs, `a.yaml:2: source "bad": with its default parameters: argument urlpath: `) ||
		!strings.Contains(errs, "b.yaml: no YAML data in file") {
		t.Errorf("errors.txt:\n%s", errs)
	}
}
