package itest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTreeWalkRequests counts what a tree walk costs in FUSE requests (the
// daemon's --debug-fuse log), which is what makes find and ls -lR fast or
// slow on a big catalog:
//   - find: no OPENDIR after the first (ENOSYS turns them off), no
//     RELEASEDIR, no extended attributes, and about two READDIRPLUS a
//     directory;
//   - ls -lR and find again, within the cache timeouts: nothing at all
//     for the listings, names or attributes (the kernel's caches answer),
//     and at most one GETXATTR for the whole mount (ENOSYS turns them off).
func TestTreeWalkRequests(t *testing.T) {
	const nCats, nSources = 3, 40
	dir := realTempDir(t)
	var root strings.Builder
	root.WriteString("sources:\n")
	for c := range nCats {
		name := fmt.Sprintf("cat%d", c)
		fmt.Fprintf(&root, "  %s:\n    driver: yaml_file_cat\n    args: {path: '{{ CATALOG_DIR }}/%s.yaml'}\n", name, name)
		var sub strings.Builder
		sub.WriteString("sources:\n")
		for s := range nSources {
			fmt.Fprintf(&sub, "  src%02d:\n    driver: csv\n    args: {urlpath: '{{ CATALOG_DIR }}/data.csv'}\n", s)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(sub.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cat := filepath.Join(dir, "catalog.yaml")
	for p, text := range map[string]string{cat: root.String(), filepath.Join(dir, "data.csv"): "a,b\n1,2\n"} {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// long timeouts: the second phase must not depend on how fast this
	// machine runs the first
	d := mount(t, cat, "--debug-fuse", "--entry-timeout", "5m", "--attr-timeout", "5m")

	var seen int // requests of earlier phases
	phase := func(what string, cmd ...string) map[string]int {
		t.Helper()
		r := run(t, 2*time.Minute, "", cmd[0], cmd[1:]...)
		if r.err != nil {
			t.Fatalf("%s: %v\n%s", what, r.err, r.stderr)
		}
		ops := settledOps(t, d)
		counts := map[string]int{}
		for _, op := range ops[seen:] {
			counts[op]++
		}
		seen = len(ops)
		t.Logf("%s: %v", what, counts)
		return counts
	}

	before := dropCount(t)
	first := phase("find", "find", d.Mnt)
	// the root, .catalog, and per nested catalog its .catalog and a
	// directory per source
	dirs := 2 + nCats*(2+nSources)
	if first["OPENDIR"] > 1 || first["RELEASEDIR"] > 0 {
		t.Errorf("find: OPENDIR %d, RELEASEDIR %d: want at most the first OPENDIR, answered ENOSYS", first["OPENDIR"], first["RELEASEDIR"])
	}
	if n := first["READDIRPLUS"] + first["READDIR"]; n > 3*dirs {
		t.Errorf("find: %d directory reads for %d directories: want about 2 each", n, dirs)
	}
	if first["GETXATTR"]+first["LISTXATTR"] > 1 {
		t.Errorf("find asked for extended attributes %d times", first["GETXATTR"]+first["LISTXATTR"])
	}

	second := phase("ls -lR", "ls", "-lR", d.Mnt)
	third := phase("find again", "find", d.Mnt)
	// Something outside this test may drop the kernel's caches (a write
	// to /proc/sys/vm/drop_caches, seen once on a CI machine: a listing
	// read again in the middle of the walk). /proc/vmstat counts those
	// drops; when one happened, fill the caches and look again.
	for try := 0; dropCount(t) != before && try < 3; try++ {
		t.Logf("the kernel's caches were dropped during the walks (/proc/vmstat); walking again")
		before = dropCount(t)
		phase("find to refill", "find", d.Mnt)
		second = phase("ls -lR", "ls", "-lR", d.Mnt)
		third = phase("find again", "find", d.Mnt)
	}
	for _, c := range []struct {
		what   string
		counts map[string]int
	}{{"ls -lR", second}, {"find again", third}} {
		for _, op := range []string{"OPENDIR", "READDIRPLUS", "READDIR", "LOOKUP", "GETATTR", "RELEASEDIR"} {
			if c.counts[op] > 0 {
				t.Errorf("%s after find: %d %s, want none: the kernel's caches should answer", c.what, c.counts[op], op)
			}
		}
	}
	if n := first["GETXATTR"] + second["GETXATTR"] + third["GETXATTR"] + second["LISTXATTR"]; n > 1 {
		t.Errorf("%d extended attribute requests: want at most one for the mount", n)
	}
}

// dropCount is how many times the page cache and the slab caches have been
// dropped since boot, from /proc/vmstat.
func dropCount(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/vmstat")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "drop_pagecache ") || strings.HasPrefix(l, "drop_slab ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, ", ")
}

var rxOp = regexp.MustCompile(`rx \d+: ([A-Z_]+)`)

// settledOps are the opcodes the daemon has logged, read once the log has
// stopped growing (it reaches us through a pipe).
func settledOps(t *testing.T, d *daemon) []string {
	t.Helper()
	prev := -1
	for range 50 {
		out := d.Output()
		if len(out) == prev {
			var ops []string
			for _, m := range rxOp.FindAllStringSubmatch(out, -1) {
				ops = append(ops, m[1])
			}
			return ops
		}
		prev = len(out)
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the daemon's log keeps growing")
	return nil
}
