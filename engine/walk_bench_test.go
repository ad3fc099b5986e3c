package engine

import (
	"context"
	"os"
	"testing"
)

// BenchmarkWalkTree walks and stats a whole catalog tree through the
// engine, as find/ls -lR over a mount do. INTAKEFS_BENCH_CATALOG names the
// catalog (scripts/bench_issue2.sh generates a 10,000-source one).
func BenchmarkWalkTree(b *testing.B) {
	root := os.Getenv("INTAKEFS_BENCH_CATALOG")
	if root == "" {
		b.Skip("set INTAKEFS_BENCH_CATALOG")
	}
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		f, err := New(root, Options{Cwd: "/"})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(f.Close)
		var walk func(d Dir) int
		walk = func(d Dir) int {
			n := 0
			kids, err := d.ReadDir(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for _, k := range kids {
				n++
				k2, err := d.Lookup(ctx, k.Name())
				if err != nil {
					b.Fatal(err)
				}
				switch x := k2.(type) {
				case Dir:
					n += walk(x)
				case File:
					if _, err := x.Stat(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			return n
		}
		if n := walk(f.Root()); n < 100 {
			b.Fatalf("only %d nodes", n)
		}
	}
}
