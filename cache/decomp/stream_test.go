package decomp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// sample is one compressed file made by the real tool.
type sample struct {
	name string // a file name with its suffix
	c    Compression
	data []byte // the original
	comp []byte // what the tool made
	// headerSize: KnownSize must find the size without counting.
	headerSize bool
}

type sampleSet struct {
	once sync.Once
	list []sample
	err  string
}

var (
	bigSamples   sampleSet // ~3 MB each: several blocks of every format
	smallSamples sampleSet // ~300 kB each: for the many damaged variants
)

// fileTool compresses data given as a file (so that zstd and lz4 can
// record the content size), returning the output.
func fileTool(tb testing.TB, dir string, data []byte, out string, name string, args ...string) []byte {
	in := writeFile(tb, dir, "in-"+out+".raw", data)
	o := filepath.Join(dir, out)
	if name == "lz4" {
		runIn(tb, dir, name, append(append([]string{"-z"}, args...), in, o)...)
	} else {
		runIn(tb, dir, name, append(args, "-o", o, in)...)
	}
	return readFile(tb, o)
}

// makeSamples builds every sample once per test binary. data is ~3 MB of
// CSV, enough for several bzip2 blocks, xz blocks, zstd and lz4 blocks.
func makeSamples(tb testing.TB) []sample { return makeSet(tb, &bigSamples, 3<<20) }

func makeSmallSamples(tb testing.TB) []sample { return makeSet(tb, &smallSamples, 300<<10) }

func makeSet(tb testing.TB, set *sampleSet, n int) []sample {
	tb.Helper()
	for _, tool := range []string{"gzip", "bzip2", "xz", "zstd", "lz4"} {
		needTool(tb, tool)
	}
	set.once.Do(func() {
		dir, err := os.MkdirTemp("", "decomp-samples-")
		if err != nil {
			set.err = err.Error()
			return
		}
		defer os.RemoveAll(dir)
		set.list = buildSamples(tb, dir, n)
	})
	if set.err != "" || set.list == nil {
		tb.Fatal("samples:", set.err)
	}
	return set.list
}

func buildSamples(tb testing.TB, dir string, n int) []sample {
	data := csvData(n, 1)
	p1, p2, p3 := data[:n/3], data[n/3:2*n/3+777], data[2*n/3+777:]
	small := csvData(10_000, 2)
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	gz := func(b []byte, args ...string) []byte { return run(tb, b, "gzip", append([]string{"-c"}, args...)...) }
	bz := func(b []byte) []byte { return run(tb, b, "bzip2", "-c", "-1") } // 100k blocks
	x := func(b []byte, args ...string) []byte {
		return run(tb, b, "xz", append([]string{"-c", "-1"}, args...)...)
	}
	zs := func(b []byte, args ...string) []byte {
		return run(tb, b, "zstd", append([]string{"-q", "-c"}, args...)...)
	}
	l4 := func(b []byte, args ...string) []byte {
		return run(tb, b, "lz4", append([]string{"-q", "-c"}, args...)...)
	}
	return []sample{
		{name: "single.csv.gz", c: Gzip, data: data, comp: gz(data)},
		{name: "fast.csv.gz", c: Gzip, data: data, comp: gz(data, "-1")},
		{name: "multi.csv.gz", c: Gzip, data: data, comp: cat(gz(p1), gz(p2), gz(p3, "-9"))},
		{name: "padded.csv.gz", c: Gzip, data: data, comp: cat(gz(p1), gz(cat(p2, p3)), make([]byte, 1000))},
		{name: "empty-member.csv.gz", c: Gzip, data: small, comp: cat(gz(nil), gz(small), gz(nil))},
		{name: "nothing.csv.gz", c: Gzip, data: nil, comp: nil},
		{name: "of-empty.csv.gz", c: Gzip, data: nil, comp: gz(nil)},
		{name: "small.csv.gz", c: Gzip, data: small, comp: gz(small)},
		{name: "single.csv.bz2", c: Bzip2, data: data, comp: bz(data)},
		{name: "multi.csv.bz2", c: Bzip2, data: data, comp: cat(bz(p1), bz(cat(p2, p3)))},
		{name: "of-empty.csv.bz2", c: Bzip2, data: nil, comp: bz(nil)},
		{name: "single.csv.xz", c: XZ, data: data, comp: x(data), headerSize: true},
		{name: "blocks.csv.xz", c: XZ, data: data, comp: x(data, "--block-size=64KiB", "-T2"), headerSize: true},
		{name: "streams.csv.xz", c: XZ, data: data, comp: cat(x(p1), x(p2, "--check=sha256"), make([]byte, 8), x(p3, "--check=none"), make([]byte, 4)), headerSize: true},
		{name: "of-empty.csv.xz", c: XZ, data: nil, comp: x(nil), headerSize: true},
		{name: "single.csv.lzma", c: LZMA, data: data, comp: x(data, "--format=lzma")},
		{name: "file.csv.zst", c: Zstd, data: data, comp: fileTool(tb, dir, data, "file.csv.zst", "zstd", "-q", "-f"), headerSize: true},
		{name: "stdin.csv.zst", c: Zstd, data: data, comp: zs(data)},
		{name: "frames.csv.zst", c: Zstd, data: data, comp: cat(
			fileTool(tb, dir, p1, "f1.zst", "zstd", "-q", "-f"),
			fileTool(tb, dir, p2, "f2.zst", "zstd", "-q", "-f", "--no-check", "-9"),
			fileTool(tb, dir, p3, "f3.zst", "zstd", "-q", "-f", "-1")), headerSize: true},
		{name: "mixed-frames.csv.zst", c: Zstd, data: data, comp: cat(fileTool(tb, dir, p1, "m1.zst", "zstd", "-q", "-f"), zs(cat(p2, p3)))},
		{name: "skippable.csv.zst", c: Zstd, data: small, comp: cat([]byte{0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'}, fileTool(tb, dir, small, "s.zst", "zstd", "-q", "-f")), headerSize: true},
		{name: "of-empty.csv.zst", c: Zstd, data: nil, comp: fileTool(tb, dir, nil, "e.zst", "zstd", "-q", "-f"), headerSize: true},
		{name: "stdin.csv.lz4", c: LZ4, data: data, comp: l4(data)},
		{name: "size.csv.lz4", c: LZ4, data: data, comp: fileTool(tb, dir, data, "size.csv.lz4", "lz4", "-q", "-f", "--content-size"), headerSize: true},
		{name: "blocks.csv.lz4", c: LZ4, data: data, comp: fileTool(tb, dir, data, "blocks.csv.lz4", "lz4", "-q", "-f", "--content-size", "-B4", "-BD", "-BX"), headerSize: true},
		{name: "frames.csv.lz4", c: LZ4, data: data, comp: cat(
			fileTool(tb, dir, p1, "l1.lz4", "lz4", "-q", "-f", "--content-size"),
			fileTool(tb, dir, cat(p2, p3), "l2.lz4", "lz4", "-q", "-f", "--content-size", "--no-frame-crc", "-9")), headerSize: true},
		{name: "legacy.csv.lz4", c: LZ4, data: data, comp: l4(data, "-l")},
	}
}

func TestStreamsByteEqual(t *testing.T) {
	for _, s := range makeSamples(t) {
		t.Run(s.name, func(t *testing.T) {
			// The format, as the name and as the magic say.
			f, err := Detect(s.name, s.comp, "infer")
			if err != nil {
				t.Fatal(err)
			}
			if f.Compression != s.c {
				t.Fatalf("Detect(infer) = %v, want %v", f, s.c)
			}
			if len(s.comp) > 0 && s.c != LZMA {
				if f := ByMagic(s.comp); f.Compression != s.c {
					t.Fatalf("ByMagic = %v, want %v", f, s.c)
				}
			}
			r := NewReader(s.c, bytes.NewReader(s.comp))
			defer r.Close()
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if d := firstDiff(got, s.data); d >= 0 {
				t.Fatalf("decompressed %d bytes, want %d; first difference at %d", len(got), len(s.data), d)
			}
		})
	}
}

func TestKnownSize(t *testing.T) {
	ctx := context.Background()
	headerOnly := SizeOptions{VerifyLimit: 0, MaxHeaderReads: 1 << 16}
	for _, s := range makeSamples(t) {
		t.Run(s.name, func(t *testing.T) {
			f := Format{Compression: s.c}
			n, ok, err := headerOnly.KnownSize(ctx, f, bytes.NewReader(s.comp), int64(len(s.comp)))
			if err != nil && len(s.comp) > 0 {
				t.Fatalf("KnownSize: %v", err)
			}
			if ok && n != int64(len(s.data)) {
				t.Fatalf("KnownSize = %d, want %d: WRONG", n, len(s.data))
			}
			if ok != s.headerSize {
				t.Fatalf("KnownSize from headers: ok=%v, want %v", ok, s.headerSize)
			}
			// Counting: everything small enough is known, and exact.
			counting := SizeOptions{VerifyLimit: 8 << 20, VerifyOutputLimit: 64 << 20}
			n, ok, err = counting.KnownSize(ctx, f, bytes.NewReader(s.comp), int64(len(s.comp)))
			if len(s.comp) == 0 && s.c != Gzip {
				if err == nil || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("empty %v: KnownSize err = %v, want ErrCorrupt", s.c, err)
				}
				return
			}
			if err != nil || !ok || n != int64(len(s.data)) {
				t.Fatalf("KnownSize by counting = %d, %v, %v; want %d", n, ok, err, len(s.data))
			}
			// A cap on the count leaves a large one unknown.
			capped := SizeOptions{VerifyLimit: 8 << 20, VerifyOutputLimit: 1 << 20}
			n, ok, _ = capped.KnownSize(ctx, f, bytes.NewReader(s.comp), int64(len(s.comp)))
			if ok && n != int64(len(s.data)) {
				t.Fatalf("capped KnownSize = %d, want %d or unknown", n, len(s.data))
			}
			if !s.headerSize && len(s.data) > 1<<20 && ok {
				t.Fatalf("capped count should give up, gave %d", n)
			}
		})
	}
}

// A multi-member gzip's last ISIZE is the last member's size only: the
// size must never be taken from it.
func TestKnownSizeGzipMultiMemberNeverWrong(t *testing.T) {
	a, b := csvData(100_000, 3), csvData(5_000, 4)
	comp := append(run(t, a, "gzip", "-c"), run(t, b, "gzip", "-c")...)
	for _, lim := range []int64{0, 1 << 10, 1 << 20} {
		o := SizeOptions{VerifyLimit: lim, VerifyOutputLimit: 1 << 30}
		n, ok, err := o.KnownSize(context.Background(), Format{Compression: Gzip}, bytes.NewReader(comp), int64(len(comp)))
		if err != nil {
			t.Fatal(err)
		}
		if ok && n != int64(len(a)+len(b)) {
			t.Fatalf("VerifyLimit %d: size %d, want %d or unknown", lim, n, len(a)+len(b))
		}
		if ok != (int64(len(comp)) <= lim) {
			t.Fatalf("VerifyLimit %d: ok=%v", lim, ok)
		}
	}
}

func TestKnownSizePlainAndArchive(t *testing.T) {
	n, ok, err := KnownSize(context.Background(), Format{}, bytes.NewReader(nil), 1234)
	if n != 1234 || !ok || err != nil {
		t.Fatal(n, ok, err)
	}
	if _, ok, _ := KnownSize(context.Background(), Format{Archive: Tar, Compression: Gzip}, bytes.NewReader(nil), 10); ok {
		t.Fatal("an archive has no size of its own")
	}
}

// Headers that lie are errors or unknown, never a size.
func TestKnownSizeBadHeaders(t *testing.T) {
	ss := makeSamples(t)
	for _, s := range ss {
		if !s.headerSize || len(s.comp) < 64 {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			for _, cut := range []int{1, 5, 13, len(s.comp) / 2} {
				tr := s.comp[:len(s.comp)-cut]
				n, ok, err := SizeOptions{MaxHeaderReads: 1 << 16}.KnownSize(context.Background(), Format{Compression: s.c}, bytes.NewReader(tr), int64(len(tr)))
				if ok {
					t.Fatalf("truncated by %d: size %d from a damaged file", cut, n)
				}
				if err == nil || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("truncated by %d: err %v, want ErrCorrupt", cut, err)
				}
			}
		})
	}
}

// An empty .zst is no zstd stream, as zstd -dc has it: no size 0 from
// its (absent) headers, and reading it fails as truncated.
func TestEmptyZstd(t *testing.T) {
	n, ok, err := SizeOptions{MaxHeaderReads: 16}.KnownSize(context.Background(), Format{Compression: Zstd}, bytes.NewReader(nil), 0)
	if ok || !errors.Is(err, ErrCorrupt) {
		t.Errorf("KnownSize of an empty zstd file: %d, %v, %v; want ErrCorrupt", n, ok, err)
	}
	if _, err := io.ReadAll(NewReader(Zstd, bytes.NewReader(nil))); !errors.Is(err, ErrCorrupt) {
		t.Errorf("reading an empty zstd file: %v, want ErrCorrupt", err)
	}
}

// NUL bytes between gzip members are skipped and the next member read, as
// Python's gzip module (what Intake reads .gz with) does; the gzip tool
// stops at them with a warning instead.
func TestGzipPaddingBetweenMembers(t *testing.T) {
	a, b := run(t, []byte("hello\n"), "gzip", "-c"), run(t, []byte("world\n"), "gzip", "-c")
	in := bytes.Join([][]byte{a, make([]byte, 100), b, make([]byte, 7)}, nil)
	r := NewReader(Gzip, bytes.NewReader(in))
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "hello\nworld\n" {
		t.Fatalf("got %q, %v", got, err)
	}
	if py, err := exec.LookPath("/usr/bin/python3"); err == nil {
		cmd := exec.Command(py, "-c", "import gzip,sys; sys.stdout.buffer.write(gzip.GzipFile(fileobj=sys.stdin.buffer).read())")
		cmd.Stdin = bytes.NewReader(in)
		out, err := cmd.Output()
		if err != nil || !bytes.Equal(out, got) {
			t.Fatalf("Python's gzip gives %q, %v; we give %q", out, err, got)
		}
	}
}
