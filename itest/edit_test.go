package itest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEditsWhileMounted: editing the catalog or a data file while mounted
// shows the new version within the kernel's cache timeouts (1 s), never a
// mix of the two.
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
	write(data, "h\n1\n2\n3\n")
	write(cat, "sources:\n  a:\n    description: second\n    driver: csv\n    args: {urlpath: '{{ CATALOG_DIR }}/x.csv'}\n  b:\n    driver: csv\n    args: {urlpath: '{{ CATALOG_DIR }}/x.csv'}\n")
	deadline := time.Now().Add(10 * time.Second)
	for {
		gotData, gotDesc := read("a.csv"), read("a/describe.yaml")
		_, errB := os.Stat(d.path("b.csv"))
		if gotData == "h\n1\n2\n3\n" && strings.Contains(gotDesc, "description: second") && errB == nil {
			break
		}
		if gotData != "h\n1\n" && gotData != "h\n1\n2\n3\n" {
			t.Fatalf("a.csv mixes versions: %q", gotData)
		}
		if time.Now().After(deadline) {
			t.Fatalf("edits not visible after 10 s: a.csv %q, describe %q, b.csv %v", gotData, gotDesc, errB)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
