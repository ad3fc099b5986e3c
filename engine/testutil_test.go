package engine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree writes files (path → content) under a new temp dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newFS(t *testing.T, dir, root string) *FS {
	t.Helper()
	f, err := New(filepath.Join(dir, root), Options{Cwd: dir, SpoolDir: filepath.Join(t.TempDir(), "spool")})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(f.Close)
	return f
}

func names(t *testing.T, f *FS, p string) []string {
	t.Helper()
	n, err := f.Walk(context.Background(), p)
	if err != nil {
		t.Fatalf("walk %q: %v", p, err)
	}
	kids, err := n.(Dir).ReadDir(context.Background())
	if err != nil {
		t.Fatalf("readdir %q: %v", p, err)
	}
	var out []string
	for _, k := range kids {
		s := k.Name()
		if k.IsDir() {
			s += "/"
		}
		out = append(out, s)
	}
	return out
}

func readPath(t *testing.T, f *FS, p string) (string, error) {
	t.Helper()
	n, err := f.Walk(context.Background(), p)
	if err != nil {
		return "", err
	}
	fl, ok := n.(File)
	if !ok {
		t.Fatalf("%s is not a file", p)
	}
	var b bytes.Buffer
	_, err = ReadAll(context.Background(), fl, &b)
	return b.String(), err
}

func mustRead(t *testing.T, f *FS, p string) string {
	t.Helper()
	s, err := readPath(t, f, p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return s
}

func joinLines(s []string) string { return strings.Join(s, "\n") }

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
