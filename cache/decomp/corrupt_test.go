package decomp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"slices"
	"testing"
)

// toolDecode decompresses with the format's own tool: the oracle for what
// damaged input must give. ok is false when the tool reports an error
// (gzip's exit status 2, a warning about trailing garbage, counts as an
// error: Python's gzip module refuses such files too).
func toolDecode(tb testing.TB, c Compression, in []byte) (out []byte, ok bool) {
	var cmd *exec.Cmd
	switch c {
	case Gzip:
		cmd = exec.Command("gzip", "-dc")
	case Bzip2:
		cmd = exec.Command("bzip2", "-dc")
	case XZ, LZMA:
		cmd = exec.Command("xz", "-dc")
	case Zstd:
		cmd = exec.Command("zstd", "-dcq")
	case LZ4:
		cmd = exec.Command("lz4", "-dcq")
	default:
		tb.Fatalf("no tool for %v", c)
	}
	cmd.Stdin = bytes.NewReader(in)
	var o bytes.Buffer
	cmd.Stdout = &o
	err := cmd.Run()
	return o.Bytes(), err == nil
}

// damage is one way of spoiling a sample.
type damage struct {
	name string
	in   []byte
	cut  bool // a truncation: what we deliver must be a prefix of the original
}

func damages(comp []byte, seed uint64) []damage {
	n := len(comp)
	var ds []damage
	for _, k := range []int{1, 4, 9, 20, n / 4, n / 2, 3 * n / 4, n - 11, n - 2} {
		if k > 0 && k < n {
			ds = append(ds, damage{name: fmt.Sprintf("cut-to-%d", k), in: comp[:k], cut: true})
		}
	}
	r := rand.New(rand.NewPCG(seed, 7))
	for _, pos := range []int{n / 3, n / 2, 2 * n / 3, r.IntN(n), r.IntN(n), r.IntN(n), n - 5} {
		if pos < 0 || pos >= n {
			continue
		}
		b := bytes.Clone(comp)
		b[pos] ^= 0x55
		ds = append(ds, damage{name: fmt.Sprintf("flip-at-%d", pos), in: b})
	}
	ds = append(ds, damage{name: "garbage-after", in: append(bytes.Clone(comp), []byte("garbage!")...)})
	return ds
}

// Damaged input: an error matching ErrCorrupt, with the offset, wherever
// the tool itself fails; the tool's output wherever it does not. Never a
// panic, never short data without an error.
func TestDamagedStreams(t *testing.T) {
	for i, s := range makeSmallSamples(t) {
		if len(s.comp) < 32 {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			for _, d := range damages(s.comp, uint64(i)) {
				want, toolOK := toolDecode(t, s.c, d.in)
				r := NewReader(s.c, bytes.NewReader(d.in))
				got, err := io.ReadAll(r)
				r.Close()
				if toolOK && s.c == Bzip2 && d.name == "garbage-after" {
					// bzip2 ignores trailing garbage with a warning;
					// Python's bz2 refuses it, and so do we.
					if !errors.Is(err, ErrCorrupt) {
						t.Errorf("%s: %v, want ErrCorrupt", d.name, err)
					}
					continue
				}
				if toolOK {
					if err != nil {
						t.Errorf("%s: the tool decodes it, we fail: %v", d.name, err)
					} else if !bytes.Equal(got, want) {
						t.Errorf("%s: %d bytes, the tool gives %d", d.name, len(got), len(want))
					}
					continue
				}
				if err == nil {
					t.Errorf("%s: the tool fails, we read %d bytes without error", d.name, len(got))
					continue
				}
				var ce *CorruptError
				if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
					t.Errorf("%s: error %v does not match ErrCorrupt", d.name, err)
					continue
				}
				if ce.Offset != int64(len(got)) {
					t.Errorf("%s: error offset %d, delivered %d bytes", d.name, ce.Offset, len(got))
				}
				if d.cut && !bytes.HasPrefix(s.data, got) {
					t.Errorf("%s: delivered bytes are not a prefix of the data (first difference at %d)", d.name, firstDiff(got, s.data))
				}
			}
		})
	}
}

// Through a Spool: reads before the damage work, reads past it fail with
// ErrCorrupt (every time), and the spool is never made complete.
func TestDamagedSpool(t *testing.T) {
	for _, s := range makeSmallSamples(t) {
		if s.name != "multi.csv.gz" && s.name != "blocks.csv.xz" && s.name != "frames.csv.zst" && s.name != "multi.csv.bz2" && s.name != "blocks.csv.lz4" {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			bad := s.comp[:len(s.comp)*2/3]
			dir := t.TempDir()
			sp, err := OpenSpool(SpoolConfig{Dir: dir, Key: "k", ExpectedSize: -1, ChunkSize: 8 << 10, Readahead: 16 << 10,
				Open: func(context.Context) (io.ReadCloser, error) { return NewReader(s.c, bytes.NewReader(bad)), nil }})
			if err != nil {
				t.Fatal(err)
			}
			defer sp.Close()
			buf := make([]byte, 4096)
			// The end is past the damage.
			_, err = sp.ReadAt(buf, int64(len(s.data))-100)
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("read past damage: %v, want ErrCorrupt", err)
			}
			good := ce.Offset
			if good <= 0 || good >= int64(len(s.data)) {
				t.Fatalf("damage offset %d out of range", good)
			}
			if n, _ := sp.ReadAt(buf[:100], good-100); n != 100 || !bytes.Equal(buf[:100], s.data[good-100:good]) {
				t.Fatalf("the bytes before the damage do not read back")
			}
			if n, err := sp.ReadAt(buf, good-10); n != 10 || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("read across the damage: %d, %v", n, err)
			}
			if _, err := sp.ReadAt(buf, good+10); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("read after the damage again: %v", err)
			}
			if _, err := sp.Fill(context.Background()); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Fill: %v", err)
			}
			if _, ok := sp.Complete(); ok {
				t.Fatal("a damaged stream must not complete")
			}
			if _, ok := LookupSpool(dir, "k"); ok {
				t.Fatal("a damaged stream must not leave a trusted spool")
			}
		})
	}
}

// Random damage, many times: no panic, no hang, error or the tool's data.
func TestDamageFuzz(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	r := rand.New(rand.NewPCG(99, 1))
	for _, s := range makeSmallSamples(t) {
		if len(s.comp) < 64 {
			continue
		}
		for k := 0; k < 12; k++ {
			b := bytes.Clone(s.comp)
			for j := 0; j < 1+r.IntN(3); j++ {
				b[r.IntN(len(b))] = byte(r.Uint32())
			}
			if r.IntN(3) == 0 {
				b = b[:r.IntN(len(b))]
			}
			rd := NewReader(s.c, bytes.NewReader(b))
			got, err := io.ReadAll(rd)
			rd.Close()
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("%s #%d: %v does not match ErrCorrupt", s.name, k, err)
				}
				continue
			}
			if want, ok := toolDecode(t, s.c, b); !ok || !bytes.Equal(got, want) {
				t.Errorf("%s #%d: read %d bytes without error; tool ok=%v with %d bytes", s.name, k, len(got), ok, len(want))
			}
		}
	}
}

// The external decoders (ExternalXZ, ExternalZstd) give the same bytes,
// and the same kinds of errors, as the Go ones.
func TestExternalXZ(t *testing.T) {
	testExternal(t, &ExternalXZ, "xz", XZ, LZMA)
}

func TestExternalZstd(t *testing.T) {
	testExternal(t, &ExternalZstd, "zstd", Zstd)
}

func testExternal(t *testing.T, setting *string, tool string, cs ...Compression) {
	bin := needTool(t, tool)
	old := *setting
	*setting = bin
	defer func() { *setting = old }()
	testDecoder(t, cs...)
}

// zstd decodes with libzstd in-process where the build has cgo (the
// default there), and with the Go decoder in a build without it or with
// INTAKEFS_DECODERS=go: both give zstd -dc's bytes and its verdicts.
func TestNativeZstd(t *testing.T) {
	if !haveNativeZstd {
		t.Skip("built without cgo: there is no libzstd to test")
	}
	setNativeZstd(t, true)
	testDecoder(t, Zstd)
}

func TestGoZstd(t *testing.T) {
	setNativeZstd(t, false)
	testDecoder(t, Zstd)
}

func setNativeZstd(t *testing.T, on bool) {
	oldN, oldE := NativeZstd, ExternalZstd
	NativeZstd, ExternalZstd = on, ""
	t.Cleanup(func() { NativeZstd, ExternalZstd = oldN, oldE })
}

// The zstd streams zstd -dc takes and refuses, beyond one frame: several
// frames, skippable frames, an empty input, a window over the 128 MiB
// limit; for every zstd decoder.
func TestZstdFrames(t *testing.T) {
	needTool(t, "zstd")
	a := csvData(200_000, 31)
	b := csvData(50_000, 32)
	za := run(t, a, "zstd", "-q", "-c")
	zb := run(t, b, "zstd", "-q", "-19", "-c")
	skippable := append([]byte{0x50, 0x2a, 0x4d, 0x18, 5, 0, 0, 0}, []byte("hello")...)
	big := csvData(300_000, 33) // framed with a 256 MiB window: --long=28 and no size in the header
	zbig := run(t, big, "zstd", "-q", "-c", "--long=28", "--no-content-size")
	cases := []struct {
		name string
		in   []byte
	}{
		{"two frames", append(bytes.Clone(za), zb...)},
		{"skippable first", append(bytes.Clone(skippable), za...)},
		{"skippable between", append(append(bytes.Clone(za), skippable...), zb...)},
		{"skippable last", append(bytes.Clone(za), skippable...)},
		{"empty", nil},
		{"window over the limit", zbig},
		{"second frame cut", append(bytes.Clone(za), zb[:len(zb)/2]...)},
	}
	decoders := map[string]bool{"go": false}
	if haveNativeZstd {
		decoders["native"] = true
	}
	for dname, native := range decoders {
		setNativeZstd(t, native)
		for _, c := range cases {
			want, toolOK := toolDecode(t, Zstd, c.in)
			r := NewReader(Zstd, bytes.NewReader(c.in))
			got, err := io.ReadAll(r)
			r.Close()
			t.Logf("%s, %s: zstd -dc ok=%v (%d bytes); we: %d bytes, %v", dname, c.name, toolOK, len(want), len(got), err)
			if toolOK != (err == nil) || (toolOK && !bytes.Equal(got, want)) {
				t.Errorf("%s, %s: zstd -dc ok=%v with %d bytes; we got %d bytes, %v", dname, c.name, toolOK, len(want), len(got), err)
			}
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s, %s: %v does not match ErrCorrupt", dname, c.name, err)
			}
			if !toolOK && len(want) > 0 && !bytes.Equal(got, want[:min(len(got), len(want))]) {
				t.Errorf("%s, %s: the bytes before the error differ from zstd -dc's", dname, c.name)
			}
		}
	}
	if !bytes.Equal(mustDecode(t, append(bytes.Clone(za), zb...)), append(bytes.Clone(a), b...)) {
		t.Error("two frames: not the two inputs one after the other")
	}
}

func mustDecode(t *testing.T, in []byte) []byte {
	t.Helper()
	r := NewReader(Zstd, bytes.NewReader(in))
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func testDecoder(t *testing.T, cs ...Compression) {
	for i, s := range makeSmallSamples(t) {
		if !slices.Contains(cs, s.c) {
			continue
		}
		r := NewReader(s.c, bytes.NewReader(s.comp))
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, s.data) {
			t.Fatalf("%s: %d bytes, %v", s.name, len(got), err)
		}
		for _, d := range damages(s.comp, uint64(i)) {
			want, toolOK := toolDecode(t, s.c, d.in)
			r := NewReader(s.c, bytes.NewReader(d.in))
			got, err := io.ReadAll(r)
			r.Close()
			if toolOK != (err == nil) || (toolOK && !bytes.Equal(got, want)) {
				t.Errorf("%s %s: tool ok=%v, we %v", s.name, d.name, toolOK, err)
			}
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s %s: %v does not match ErrCorrupt", s.name, d.name, err)
			}
		}
		// Closing in the middle ends the child.
		r = NewReader(s.c, bytes.NewReader(s.comp))
		io.ReadFull(r, make([]byte, 1000))
		r.Close()
	}
	// An input that fails is the input's error, not damage.
	s := sampleNamed(t, makeSmallSamples(t), map[Compression]string{XZ: "single.csv.xz", Zstd: "file.csv.zst"}[cs[0]])
	src := &flakyReaderAt{r: bytes.NewReader(s.comp), failAt: int64(len(s.comp)) / 2}
	r := NewReader(cs[0], io.NewSectionReader(src, 0, int64(len(s.comp))))
	_, err := io.ReadAll(r)
	r.Close()
	if !errors.Is(err, errFlaky) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("failing input: %v", err)
	}
}

// The Go xz decoder gets the dictionary the file's block header asks
// for, not XZMaxDict: a 1 GiB buffer per stream made a 100 MB file take
// 1.1 GiB of memory.
func TestXZDictFromHeader(t *testing.T) {
	bin := needTool(t, "xz")
	old := ExternalXZ
	ExternalXZ = ""
	defer func() { ExternalXZ = old }()
	data := bytes.Repeat([]byte("id,name,value\n1,alpha,2.5\n"), 4000)
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"-0"}, 8 << 20},
		{[]string{"-9"}, 64 << 20},
		{[]string{"--lzma2=dict=100MiB"}, 128 << 20},
	} {
		xzd := run(t, data, bin, append(c.args, "-c")...)
		if got := xzDictCap(bufio.NewReader(bytes.NewReader(xzd))); got != c.want {
			t.Errorf("xz %v: dictionary %d, want %d", c.args, got, c.want)
		}
		got, err := io.ReadAll(NewReader(XZ, bytes.NewReader(xzd)))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("xz %v: %d bytes, %v", c.args, len(got), err)
		}
	}
	if got := xzDictCap(bufio.NewReader(bytes.NewReader([]byte("not xz")))); got != 8<<20 {
		t.Errorf("short input: %d", got)
	}
}
