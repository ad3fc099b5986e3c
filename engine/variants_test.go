package engine

import (
	"context"
	"strings"
	"testing"
)

// Every variant a listing shows (for allowed values of every type) is a
// name that resolves back to the same file: the same inode, the values of
// its name.
func TestVariantsResolveBack(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"cat.yaml": `
sources:
  typed:
    driver: csv
    parameters:
      s: {description: s, type: str, default: a, allowed: [a, 'b c', 'x.csv', '', 'p@q/r%']}
      i: {description: i, type: int, default: 1, allowed: [1, 2]}
      f: {description: f, type: float, default: 0.5, allowed: [0.5, 1]}
      b: {description: b, type: bool, default: false, allowed: [false, true]}
    args: {urlpath: '{{ CATALOG_DIR }}/{{ s }}-{{ i }}-{{ f }}-{{ b }}.csv'}
  dated:
    driver: csv
    parameters:
      d: {description: d, type: datetime, default: '2020-01-01', allowed: ['2020-01-01', '2021-06-07T08:09:10']}
      l: {description: l, type: list, default: [a], allowed: [[a], [b, c]]}
      t: {description: t, type: tuple, default: [1, 2], allowed: [[1, 2], [3]]}
    args: {urlpath: '{{ CATALOG_DIR }}/{{ d }}-{{ l|join }}-{{ t|length }}.csv'}
`,
	})
	f := newFS(t, dir, "cat.yaml")
	ctx := context.Background()
	kids, err := f.Root().ReadDir(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range kids {
		name := k.Name()
		if !strings.Contains(name, "@") {
			continue
		}
		n++
		got, err := f.Walk(ctx, name)
		if err != nil {
			t.Errorf("listed %q does not resolve: %v", name, err)
			continue
		}
		if got.Ino() != k.Ino() {
			t.Errorf("%q: the listed inode %d, the looked-up one %d", name, k.Ino(), got.Ino())
		}
		lr, gr := k.(*dataFile).r, got.(*dataFile).r
		if lr.Key() != gr.Key() {
			t.Errorf("%q: listed %q, resolved %q", name, lr.Key(), gr.Key())
		}
	}
	// typed: 5*2*2*2 - 1 combinations beyond the default; dated 2*2*2 - 1
	if want := 39 + 7; n != want {
		t.Errorf("%d variants listed, want %d", n, want)
	}
}
