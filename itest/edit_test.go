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
	// the nested catalog's file does not exist yet
	nested := "  sub: {driver: yaml_file_cat, args: {path: '{{ CATALOG_DIR }}/sub.yaml'}}\n"
	write(cat, "metadata: {v: 1}\nsources:\n  a:\n    description: first\n    driver: csv\n    args: {urlpath: '{{ CATALOG_DIR }}/x.csv'}\n"+nested)
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
		if names := readDirNames(t, d.Mnt); len(names) != 4 {
			t.Fatalf("listing before the edit: %v", names)
		}
		if names := readDirNames(t, d.path("sub")); len(names) != 1 {
			t.Fatalf("the nested catalog that cannot load lists %v, want .catalog only", names)
		}
	}
	if got := read(".catalog/metadata.json"); !strings.Contains(got, `"v": 1`) {
		t.Fatalf(".catalog/metadata.json: %s", got)
	}
	if got := read("sub/.catalog/errors.txt"); !strings.Contains(got, "sub.yaml") {
		t.Fatalf("sub/.catalog/errors.txt does not say why: %q", got)
	}
	if _, err := os.Stat(d.path("sub/.catalog/stats.json")); err == nil {
		t.Errorf("a nested catalog that cannot load shows the root's stats.json")
	}
	mtime0 := statFile(t, d.Mnt).ModTime()
	write(data, "h\n1\n2\n3\n")
	write(cat, "metadata: {v: 2}\nsources:\n  a:\n    description: second\n    driver: csv\n    args: {urlpath: '{{ CATALOG_DIR }}/x.csv'}\n  b:\n    driver: csv\n    args: {urlpath: '{{ CATALOG_DIR }}/x.csv'}\n"+nested)
	write(filepath.Join(dir, "sub.yaml"), "sources:\n  c:\n    driver: csv\n    args: {urlpath: '{{ CATALOG_DIR }}/x.csv'}\n")
	deadline := time.Now().Add(10 * time.Second)
	for {
		// only the paths a user would look at: the kernel must learn of
		// the changes from them (a lookup inside sub/ would load it)
		gotData, gotDesc, gotMeta := read("a.csv"), read("a/describe.yaml"), read(".catalog/metadata.json")
		_, errB := os.Stat(d.path("b.csv"))
		_, listedB := readDirNames(t, d.Mnt)["b.csv"]
		_, listedC := readDirNames(t, d.path("sub"))["c.csv"]
		gotErrs := read("sub/.catalog/errors.txt")
		mtime := statFile(t, d.Mnt).ModTime()
		if gotData == "h\n1\n2\n3\n" && strings.Contains(gotDesc, "description: second") && errB == nil &&
			listedB && mtime.After(mtime0) && strings.Contains(gotMeta, `"v": 2`) && listedC && gotErrs == "" {
			break
		}
		if gotData != "h\n1\n" && gotData != "h\n1\n2\n3\n" {
			t.Fatalf("a.csv mixes versions: %q", gotData)
		}
		if time.Now().After(deadline) {
			t.Fatalf("edits not visible after 10 s: a.csv %q, describe %q, b.csv %v, b.csv listed %v, root mtime %v then %v, "+
				".catalog/metadata.json %s, sub lists c.csv %v, sub's errors.txt %q",
				gotData, gotDesc, errB, listedB, mtime0, mtime, gotMeta, listedC, gotErrs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
