package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkLookupParameterised resolves distinct parameterised names
// (parse, coerce and validate the values, render the arguments, plan the
// data file), as a FUSE LOOKUP of src@n=<i>@region=<r>.csv does; see
// scripts/bench_issue3.sh for the same through a mount.
func BenchmarkLookupParameterised(b *testing.B) {
	files := map[string]string{"cat.yaml": `
sources:
  src:
    driver: csv
    parameters:
      n: {description: a number, type: int, default: 0, min: 0}
      region: {description: a region, type: str, default: eu, allowed: [eu, us]}
    args:
      urlpath: '{{ CATALOG_DIR }}/data/{{ region }}-{{ n % 10 }}.csv'
`}
	for _, r := range []string{"eu", "us"} {
		for i := 0; i < 10; i++ {
			files[fmt.Sprintf("data/%s-%d.csv", r, i)] = "a,b\n1,2\n"
		}
	}
	dir := b.TempDir()
	for p, c := range files {
		writeFileAll(b, dir+"/"+p, c)
	}
	f, err := New(dir+"/cat.yaml", Options{Cwd: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(f.Close)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("src@n=%d@region=%s.csv", i, []string{"eu", "us"}[i%2])
		n, err := f.Walk(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := n.(File).Stat(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func writeFileAll(tb testing.TB, p, c string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
		tb.Fatal(err)
	}
}
