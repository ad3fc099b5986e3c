package decomp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
)

// readThrough decodes comp as Detect says for name in "auto" mode, both
// by NewReader and through a Spool.
func readThrough(t *testing.T, name string, comp []byte) (Format, []byte, error, []byte, error) {
	t.Helper()
	f, err := Detect(name, comp[:min(len(comp), 512)], "")
	if err != nil {
		t.Fatalf("%s: Detect: %v (auto mode decides at read, it does not fail)", name, err)
	}
	r := NewReader(f.Compression, bytes.NewReader(comp))
	got, rerr := io.ReadAll(r)
	r.Close()
	var calls atomic.Int32
	sp, err := OpenSpool(SpoolConfig{Dir: t.TempDir(), Key: name, ExpectedSize: -1,
		Open: opener(f.Compression, bytes.NewReader(comp), int64(len(comp)), &calls)})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	buf := make([]byte, 1<<20)
	n, serr := sp.ReadAt(buf, 0)
	if serr == io.EOF {
		serr = nil
	}
	return f, got, rerr, buf[:n], serr
}

// TestSuffixWithoutMagic: a file whose suffix names a compression but
// whose bytes do not carry its magic (one bit of the magic flipped, or
// not compressed at all) is decoded as the suffix says and fails at
// offset 0 as corrupt data; it is never served as its raw bytes. The
// files come from the real tools.
func TestSuffixWithoutMagic(t *testing.T) {
	data := csvData(200_000, 7)
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 1
		return b
	}
	cases := []struct {
		name string
		c    Compression
		comp []byte
	}{
		{"a.csv.gz", Gzip, flip(run(t, data, "gzip", "-c"), 0)},
		{"b.csv.gz", Gzip, flip(run(t, data, "gzip", "-c"), 1)},
		{"a.csv.zst", Zstd, flip(run(t, data, "zstd", "-q", "-c"), 0)},
		{"a.csv.bz2", Bzip2, flip(run(t, data, "bzip2", "-c"), 2)},
		{"a.csv.xz", XZ, flip(run(t, data, "xz", "-c", "-1"), 0)},
		{"a.csv.lz4", LZ4, flip(run(t, data, "lz4", "-q", "-c"), 0)},
		{"a.tar.gz", Gzip, flip(run(t, data, "gzip", "-c"), 0)},
		{"plain.csv.gz", Gzip, data},
		{"plain.csv.zst", Zstd, data},
	}
	for _, ext := range []bool{false, true} {
		if ext {
			ExternalXZ, ExternalZstd = needTool(t, "xz"), needTool(t, "zstd")
		}
		for _, c := range cases {
			f, got, rerr, sgot, serr := readThrough(t, c.name, c.comp)
			if f.Compression != c.c {
				t.Errorf("%s: Detect = %v, want %v (as the suffix says)", c.name, f, c.c)
			}
			for _, e := range []error{rerr, serr} {
				var ce *CorruptError
				if !errors.Is(e, ErrCorrupt) || !errors.As(e, &ce) || ce.Offset != 0 {
					t.Errorf("%s (external %v): error %v, want a CorruptError at offset 0", c.name, ext, e)
				}
			}
			if len(got) != 0 || len(sgot) != 0 {
				t.Errorf("%s (external %v): %d/%d bytes served, want none", c.name, ext, len(got), len(sgot))
			}
		}
	}
	ExternalXZ, ExternalZstd = "", ""

	// What is not changed: a file without a compression suffix whose
	// magic says zstd is read as zstd; an explicit compression is obeyed.
	zs := run(t, data, "zstd", "-q", "-c")
	if f, got, rerr, _, serr := readThrough(t, "data.csv", zs); f.Compression != Zstd || rerr != nil || serr != nil || !bytes.Equal(got, data) {
		t.Errorf("data.csv that is zstd: %v, %v, %v", f, rerr, serr)
	}
	if f, err := Detect("a.csv.gz", data[:512], "none"); err != nil || !f.IsPlain() {
		t.Errorf(`compression "none": %v, %v`, f, err)
	}
	if _, err := Detect("a.csv", flip(run(t, data, "gzip", "-c"), 0)[:512], "gzip"); !errors.Is(err, ErrCorrupt) {
		t.Errorf(`compression "gzip" over damaged gzip: %v, want ErrCorrupt`, err)
	}
}

// TestLegacyLZMANamedXZ: a legacy .lzma stream named .xz (xz
// --format=lzma) is decoded as LZMA, as xz -dc decodes it, in Go and by
// the xz program.
func TestLegacyLZMANamedXZ(t *testing.T) {
	data := csvData(300_000, 8)
	comp := run(t, data, "xz", "--format=lzma", "-c")
	for _, ext := range []string{"", needTool(t, "xz")} {
		ExternalXZ = ext
		f, got, rerr, sgot, serr := readThrough(t, "a.csv.xz", comp)
		if f.Compression != LZMA || rerr != nil || serr != nil {
			t.Errorf("external %q: %v, %v, %v; want lzma", ext, f, rerr, serr)
		}
		if !bytes.Equal(got, data) || !bytes.Equal(sgot, data[:len(sgot)]) || len(sgot) == 0 {
			t.Errorf("external %q: wrong bytes", ext)
		}
	}
	ExternalXZ = ""
	sp, err := OpenSpool(SpoolConfig{Dir: t.TempDir(), Key: "k", ExpectedSize: -1,
		Open: func(context.Context) (io.ReadCloser, error) { return NewReader(LZMA, bytes.NewReader(comp)), nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if n, err := sp.Fill(context.Background()); err != nil || n != int64(len(data)) {
		t.Errorf("Fill = %d, %v; want %d", n, err, len(data))
	}
}
