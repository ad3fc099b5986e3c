package itest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEditsWhileMounted: editing the catalog or a data file while mounted
// shows the new version within the kernel's cache timeouts (5 s), never a
// mix of the two. Listings too: the kernel keeps directory listings, and
// must drop them when the catalog behind one changes.
func TestEditsWhileMounted(t *testing.T) {
	dir := realTempDir(t)
	cat := filepath.Join(dir, "cat.yaml")
	data := filepath.Join(dir, "x.csv")
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(cat, "sources:\n  a:\n    description: first\n    driver: csv\n    args: {urlpath: '{{ CATALOG_DIR }}/x.csv'}\n")
	write(data, "h\n1\n")
	d := mount(t, cat)
	read := func(rel string) string {
		t.Helper()
		b, err := withTimeout(t, "read "+rel, func() ([]byte, error) { return os.ReadFile(d.path(rel)) })
		if err != nil {
			t.Fatalf("read %s: %v", rel, err)
		}
		return string(b)
	}
	if got := read("a.csv"); got != "h\n1\n" {
		t.Fatalf("a.csv: %q", got)
	}
	if got := read("a/describe.yaml"); !strings.Contains(got, "description: first") {
		t.Fatalf("describe.yaml: %s", got)
	}
	// listed twice, so the second listing is the kernel's cached one
	for range 2 {
		if names := readDirNames(t, d.Mnt); len(names) != 3 {
			t.Fatalf("listing before the edit: %v", names)
		}
	}
	mtime0 := statFile(t, d.Mnt).ModTime()
	write(data, "h\n1\n2\n3\n")
	write(cat, "sources:\n  a:\n    description: second\n    driver: csv\n    args: {urlpath: '{{ CATALOG_DIR }}/x.csv'}\n  b:\n    driver: csv\n    args: {urlpath: '{{ CATALOG_DIR }}/x.csv'}\n")
	deadline := time.Now().Add(10 * time.Second)
	for {
		gotData, gotDesc := read("a.csv"), read("a/describe.yaml")
		_, errB := os.Stat(d.path("b.csv"))
		_, listedB := readDirNames(t, d.Mnt)["b.csv"]
		mtime := statFile(t, d.Mnt).ModTime()
		if gotData == "h\n1\n2\n3\n" && strings.Contains(gotDesc, "description: second") && errB == nil &&
			listedB && mtime.After(mtime0) {
			break
		}
		if gotData != "h\n1\n" && gotData != "h\n1\n2\n3\n" {
			t.Fatalf("a.csv mixes versions: %q", gotData)
		}
		if time.Now().After(deadline) {
			t.Fatalf("edits not visible after 10 s: a.csv %q, describe %q, b.csv %v, b.csv listed %v, root mtime %v then %v",
				gotData, gotDesc, errB, listedB, mtime0, mtime)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
