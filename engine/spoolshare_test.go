package engine

import (
	"bytes"
	"compress/gzip"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/intakefs/intakefs/cache"
)

// Blocks and decompressed spools share one --cache-max-size: a remote
// .gz read after the cache's blocks filled the limit still reads (the
// cache lets go of unread blocks for the spool), and blocks and spools
// together stay under the limit.
func TestSpoolsAndBlocksShareTheLimit(t *testing.T) {
	srvDir := t.TempDir()
	plain := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
	writeBytes(t, filepath.Join(srvDir, "plain.bin"), plain)
	csv := csvRows(7, 2<<20)
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write(csv)
	w.Close()
	writeBytes(t, filepath.Join(srvDir, "data.csv.gz"), gz.Bytes())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.FileServer(http.Dir(srvDir)))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	const limit = 4 << 20
	cdir := t.TempDir()
	c, err := cache.New(cache.Options{Dir: cdir, MaxBytes: limit, MinFreeBytes: -1, BlockSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := writeTree(t, map[string]string{"cat.yaml": `
sources:
  plain: {driver: textfiles, args: {urlpath: '` + srv.URL + `/plain.bin'}}
  gz: {driver: csv, args: {urlpath: '` + srv.URL + `/data.csv.gz'}}
`})
	f, err := New(filepath.Join(dir, "cat.yaml"), Options{Cwd: dir, Opener: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	if got := readNode(t, f, "plain.bin"); !bytes.Equal(got, plain) {
		t.Fatal("plain.bin differs")
	}
	if s := c.Stats(); s.CachedBytes < 3<<20 {
		t.Fatalf("the plain object was not cached: %+v", s)
	}
	if got := readNode(t, f, "gz.csv"); !bytes.Equal(got, csv) {
		t.Fatalf("gz.csv: %d bytes, want %d", len(got), len(csv))
	}
	blocks := c.Stats().CachedBytes
	var spooled int64
	ents, _ := os.ReadDir(filepath.Join(cdir, "spool"))
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			spooled += fi.Size()
		}
	}
	if spooled < int64(len(csv)) {
		t.Errorf("spool dir holds %d bytes, want the %d decompressed", spooled, len(csv))
	}
	if blocks+f.spools.Total() > limit {
		t.Errorf("blocks %d + spools %d exceed the limit %d", blocks, f.spools.Total(), limit)
	}
}
