package remote

import (
	"os"
	"path/filepath"
	"testing"
)

// dirPut writes objects as files under dir.
func dirPut(t *testing.T, dir string) func(key string, data []byte) {
	return func(key string, data []byte) {
		p := filepath.Join(dir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLocalConformance(t *testing.T) {
	dir := t.TempDir()
	runConformance(t, Local{}, dir, dirPut(t, dir), confOpts{})
}

func TestLocalConformanceFileURL(t *testing.T) {
	dir := t.TempDir()
	runConformance(t, Local{}, "file://"+dir, dirPut(t, dir), confOpts{})
}

func TestLocalWithRetryConformance(t *testing.T) {
	dir := t.TempDir()
	s := WithRetry(Local{}, RetryPolicy{})
	if _, ok := s.(ReaderAtOpener); !ok {
		t.Error("WithRetry(Local) lost ReaderAtOpener")
	}
	runConformance(t, s, dir, dirPut(t, dir), confOpts{})
}
