package engine

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// A directory's Version moves on exactly when what it lists can change:
// a catalog directory (and its .catalog) with each load of its file or a
// parent's; a source's directory never under one inode.
func TestDirVersion(t *testing.T) {
	ctx := context.Background()
	dir := writeTree(t, map[string]string{
		"root.yaml": "sources:\n  sub:\n    driver: yaml_file_cat\n    args: {path: '{{ CATALOG_DIR }}/sub.yaml'}\n",
		"sub.yaml":  "sources:\n  a:\n    driver: csv\n    args: {urlpath: x.csv}\n",
	})
	f := newFS(t, dir, "root.yaml")
	// no reuse of checks, views or listings: every call sees the files now
	f.Loader.RecheckInterval = 0
	f.TTL = 0
	version := func(p string) time.Time {
		t.Helper()
		n, err := f.Walk(ctx, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		v, ok := n.(Versioned)
		if !ok {
			t.Fatalf("%s (%T) is not Versioned", p, n)
		}
		return v.Version(ctx)
	}
	// the root's listing holds sub before anything loaded it: what is
	// known of it then is the start, and asking loads nothing
	rootKids, err := f.Root().ReadDir(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var sub Versioned
	for _, k := range rootKids {
		if k.Name() == "sub" {
			sub = k.(Versioned)
		}
	}
	if sub == nil {
		t.Fatalf("no sub in %v", rootKids)
	}
	if got := sub.KnownVersion(); !got.Equal(f.Started) {
		t.Errorf("sub before any load: known version %v, want the start %v", got, f.Started)
	}
	if got := sub.Version(ctx); !got.After(f.Started) || !sub.KnownVersion().Equal(got) {
		t.Errorf("sub loaded: version %v, known %v; want a load time after the start", got, sub.KnownVersion())
	}

	paths := []string{"", ".catalog", "sub", "sub/.catalog", "sub/a"}
	before := map[string]time.Time{}
	for _, p := range paths {
		before[p] = version(p)
		if again := version(p); !again.Equal(before[p]) {
			t.Errorf("%q: version %v then %v with nothing changed", p, before[p], again)
		}
	}
	if before["sub/a"] != f.Started {
		t.Errorf("sub/a: version %v, want the start %v", before["sub/a"], f.Started)
	}

	// the nested file changes: sub and sub/.catalog move on, the root not
	time.Sleep(10 * time.Millisecond) // a new mtime on coarse clocks too
	writeFile(t, filepath.Join(dir, "sub.yaml"), "sources:\n  a:\n    driver: csv\n    args: {urlpath: x.csv}\n  b:\n    driver: csv\n    args: {urlpath: y.csv}\n")
	for p, moves := range map[string]bool{"": false, ".catalog": false, "sub": true, "sub/.catalog": true} {
		if got := version(p); got.After(before[p]) != moves {
			t.Errorf("after editing sub.yaml, %q: version %v, was %v; want moved=%v", p, got, before[p], moves)
		}
	}
	if ns := names(t, f, "sub"); len(ns) != 5 { // .catalog a a.csv b b.csv
		t.Errorf("sub after the edit: %v", ns)
	}

	// the root changes: everything below it moves on too
	mid := version("sub")
	time.Sleep(10 * time.Millisecond)
	writeFile(t, filepath.Join(dir, "root.yaml"), "description: edited\nsources:\n  sub:\n    driver: yaml_file_cat\n    args: {path: '{{ CATALOG_DIR }}/sub.yaml'}\n")
	if got := version(""); !got.After(before[""]) {
		t.Errorf("root after editing root.yaml: version %v, was %v", got, before[""])
	}
	if got := version("sub"); !got.After(mid) {
		t.Errorf("sub after editing its parent: version %v, was %v", got, mid)
	}
}
