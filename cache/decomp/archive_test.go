package decomp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
)

// tree is the content of the archives the tests make.
func tree() map[string][]byte {
	long := strings.Repeat("a-very-long-directory-name/", 6) + "deep file with spaces ünïcode.csv"
	return map[string][]byte{
		"data/part-0.csv":   csvData(200_000, 10),
		"data/part-1.csv":   csvData(150_000, 11),
		"data/notes.txt":    []byte("not a csv\n"),
		"empty.csv":         nil,
		"random.bin":        bytes.Repeat([]byte{1, 2, 3, 250, 7}, 20_000),
		long:                csvData(5_000, 12),
		"data/sub/more.csv": csvData(70_000, 13),
	}
}

func writeTree(t *testing.T, dir string) map[string][]byte {
	files := tree()
	for name, b := range files {
		writeFile(t, dir, name, b)
	}
	return files
}

func regularNames(ms []Member) []string {
	var out []string
	for _, m := range ms {
		if m.Type == Regular {
			out = append(out, m.Name)
		}
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestZip(t *testing.T) {
	for _, variant := range []struct {
		name string
		args []string
	}{
		{"deflate", []string{"-q", "-r"}},
		{"stored", []string{"-q", "-r", "-0"}},
		{"mixed", []string{"-q", "-r", "-n", ".bin:.txt"}}, // .bin and .txt stored, the rest deflated
		{"bzip2", []string{"-q", "-r", "-Z", "bzip2"}},
	} {
		t.Run(variant.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			files := writeTree(t, src)
			zp := filepath.Join(dir, "x.zip")
			runIn(t, src, "zip", append(variant.args, zp, ".")...)
			f, err := os.Open(zp)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			head := make([]byte, 512)
			f.ReadAt(head, 0)
			if fm, err := Detect("x.zip", head, "infer"); err != nil || fm.Archive != Zip {
				t.Fatalf("Detect = %v, %v", fm, err)
			}
			if fm := ByMagic(head); fm.Archive != Zip {
				t.Fatalf("ByMagic = %v", fm)
			}
			z, err := OpenZip(f, fi.Size())
			if err != nil {
				t.Fatal(err)
			}
			// zip names entries "./x" as "x".
			if got, want := regularNames(z.Members()), sortedKeys(files); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("members %q, want %q", got, want)
			}
			stored := 0
			for _, m := range z.Members() {
				if m.Type != Regular {
					continue
				}
				want := files[m.Name]
				if m.Size != int64(len(want)) {
					t.Fatalf("%s: size %d, want %d", m.Name, m.Size, len(want))
				}
				rc, err := z.Open(m)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%s: %d bytes, %v; want %d", m.Name, len(got), err, len(want))
				}
				if sr, ok, err := z.ReaderAt(m); err != nil {
					t.Fatal(err)
				} else if ok {
					stored++
					got := make([]byte, len(want))
					if n, _ := sr.ReadAt(got, 0); n != len(want) || !bytes.Equal(got, want) {
						t.Fatalf("%s: ReaderAt gives other bytes", m.Name)
					}
				}
				// Random access to a compressed member: a Spool over Open.
				if len(want) > 100_000 {
					sp, err := OpenSpool(SpoolConfig{Dir: t.TempDir(), Key: m.Name, ExpectedSize: m.Size, Open: z.Opener(m), ChunkSize: 16 << 10, Readahead: 16 << 10})
					if err != nil {
						t.Fatal(err)
					}
					checkRead(t, sp, want, int64(len(want))-500, 1000)
					checkRead(t, sp, want, 10, 1000)
					sp.Close()
				}
			}
			switch variant.name {
			case "stored":
				if stored != len(files)-1 { // the empty file is "stored" too, and counted; the long one also
					if stored < len(files)-1 {
						t.Fatalf("%d stored members, want all", stored)
					}
				}
			case "deflate", "bzip2":
				if stored > 2 { // zip stores what does not shrink (the empty file)
					t.Fatalf("%d stored members", stored)
				}
			}
		})
	}
}

func TestZipDamage(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	files := writeTree(t, src)
	zp := filepath.Join(dir, "x.zip")
	runIn(t, src, "zip", "-q", "-r", zp, ".")
	b := readFile(t, zp)
	// Truncated: no central directory.
	for _, cut := range []int{len(b) / 2, len(b) - 10} {
		if _, err := OpenZip(bytes.NewReader(b[:cut]), int64(cut)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: %v, want ErrCorrupt", cut, err)
		}
	}
	// A damaged member: its CRC (or inflate) fails, with the offset.
	z, err := OpenZip(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range z.Members() {
		if m.Name != "data/part-0.csv" {
			continue
		}
		zf := z.zr.File[m.index]
		off, _ := zf.DataOffset()
		bad := bytes.Clone(b)
		bad[off+int64(zf.CompressedSize64)/2] ^= 0x40
		z2, err := OpenZip(bytes.NewReader(bad), int64(len(bad)))
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := z2.Open(m)
		got, err := io.ReadAll(rc)
		var ce *CorruptError
		if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("damaged member: %v, want ErrCorrupt", err)
		}
		if ce.Offset != int64(len(got)) || len(got) > len(files[m.Name]) {
			t.Fatalf("offset %d, got %d bytes", ce.Offset, len(got))
		}
		return
	}
	t.Fatal("member not found")
}

func TestTar(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	files := writeTree(t, src)
	os.Symlink("data/part-0.csv", filepath.Join(src, "link.csv"))
	for _, v := range []struct {
		name string
		args []string
		c    Compression
	}{
		{"x.tar", []string{"-cf"}, None},
		{"x.tar.gz", []string{"-czf"}, Gzip},
		{"x.tgz", []string{"-czf"}, Gzip},
		{"x.tar.bz2", []string{"-cjf"}, Bzip2},
		{"x.tar.xz", []string{"-cJf"}, XZ},
		{"x.tar.zst", []string{"--zstd", "-cf"}, Zstd},
		{"x.tar.lz4", []string{"-I", "lz4", "-cf"}, LZ4},
		{"x-posix.tar", []string{"--format=posix", "-cf"}, None},
	} {
		t.Run(v.name, func(t *testing.T) {
			switch v.c {
			case Zstd:
				needTool(t, "zstd")
			case LZ4:
				needTool(t, "lz4")
			case XZ:
				needTool(t, "xz")
			case Bzip2:
				needTool(t, "bzip2")
			}
			tp := filepath.Join(dir, v.name)
			runIn(t, src, "tar", append(v.args, tp, ".")...)
			f, err := os.Open(tp)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fi, _ := f.Stat()
			head := make([]byte, 4096)
			k, _ := f.ReadAt(head, 0)
			head = head[:k]
			fm, err := Detect(v.name, head, "infer")
			if err != nil || fm != (Format{Archive: Tar, Compression: v.c}) {
				t.Fatalf("Detect = %v, %v", fm, err)
			}
			// Tar inside compression is seen from 4 kB of head for gzip only:
			// the other formats decode in blocks larger than that.
			if mf := ByMagic(head); mf.Compression != v.c || (mf.Archive != Tar) != (v.c != None && v.c != Gzip) {
				t.Fatalf("ByMagic = %v", mf)
			}
			// The tar itself: the file, or a Spool of its decompression.
			var tr io.ReaderAt = f
			size := fi.Size()
			var sp *Spool
			if v.c != None {
				var calls atomic.Int32
				sp, err = OpenSpool(SpoolConfig{Dir: t.TempDir(), Key: v.name, ExpectedSize: -1, Open: opener(v.c, f, fi.Size(), &calls)})
				if err != nil {
					t.Fatal(err)
				}
				defer sp.Close()
				tr, size = sp, -1
			}
			ta, err := ScanTar(context.Background(), tr, size)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string][]byte{}
			for k, b := range files {
				want["./"+k] = b
			}
			if got, w := regularNames(ta.Members()), sortedKeys(want); strings.Join(got, "|") != strings.Join(w, "|") {
				t.Fatalf("members %q, want %q", got, w)
			}
			links := 0
			for _, m := range ta.Members() {
				if m.Type == Symlink {
					links++
					if m.Linkname != "data/part-0.csv" {
						t.Fatalf("link to %q", m.Linkname)
					}
				}
				if m.Type != Regular {
					continue
				}
				w := want[m.Name]
				if m.Size != int64(len(w)) {
					t.Fatalf("%s: size %d, want %d", m.Name, m.Size, len(w))
				}
				sr, ok := ta.ReaderAt(m)
				if !ok {
					t.Fatalf("%s: no ReaderAt", m.Name)
				}
				got, err := io.ReadAll(sr)
				if err != nil || !bytes.Equal(got, w) {
					t.Fatalf("%s: %d bytes, %v", m.Name, len(got), err)
				}
				if c, ok := CleanName(m.Name); !ok || "./"+c != m.Name {
					t.Fatalf("CleanName(%q) = %q, %v", m.Name, c, ok)
				}
			}
			if links != 1 {
				t.Fatalf("%d symlinks", links)
			}
			// The same list from a plain stream.
			var rd io.Reader = io.NewSectionReader(f, 0, fi.Size())
			if v.c != None {
				rc := NewReader(v.c, rd)
				defer rc.Close()
				rd = rc
			}
			ms, err := ListTar(context.Background(), rd)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != len(ta.Members()) {
				t.Fatalf("ListTar: %d members, ScanTar %d", len(ms), len(ta.Members()))
			}
			for i, m := range ms {
				if m.Name != ta.Members()[i].Name || m.Offset != ta.Members()[i].Offset || m.Size != ta.Members()[i].Size {
					t.Fatalf("ListTar member %d: %+v vs %+v", i, m, ta.Members()[i])
				}
			}
			// regex_filter.
			flt, err := CompileFilter(`part-\d\.csv\Z`)
			if err != nil {
				t.Fatal(err)
			}
			if got := regularNames(FilterMembers(ta.Members(), flt)); strings.Join(got, "|") != "./data/part-0.csv|./data/part-1.csv" {
				t.Fatalf("filter: %v", got)
			}
		})
	}
}

func TestTarDamage(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeTree(t, src)
	tp := filepath.Join(dir, "x.tar")
	runIn(t, src, "tar", "-cf", tp, ".")
	b := readFile(t, tp)
	// Cut inside the second member's data.
	full, err := ScanTar(context.Background(), bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var cut int64 = -1
	for _, m := range full.Members() {
		if m.Type == Regular && m.Size > 10_000 {
			cut = m.Offset + m.Size/2
			break
		}
	}
	ta, err := ScanTar(context.Background(), bytes.NewReader(b[:cut]), cut)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated tar: %v, want ErrCorrupt", err)
	}
	if len(ta.Members()) == 0 {
		t.Fatal("members before the damage are lost")
	}
	// A damaged header.
	bad := bytes.Clone(b)
	m := full.Members()[2]
	bad[m.Offset-512+10] ^= 0x20
	if _, err := ScanTar(context.Background(), bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad header: %v, want ErrCorrupt", err)
	}
	// A compressed tar, truncated: the Spool's damage shows through.
	gz := run(t, b, "gzip", "-c")
	gz = gz[:len(gz)*2/3]
	sp, err := OpenSpool(SpoolConfig{Dir: t.TempDir(), Key: "k", ExpectedSize: -1,
		Open: func(context.Context) (io.ReadCloser, error) { return NewReader(Gzip, bytes.NewReader(gz)), nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if _, err := ScanTar(context.Background(), sp, -1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated tar.gz: %v, want ErrCorrupt", err)
	}
}

func TestCleanNameAndFilter(t *testing.T) {
	for in, want := range map[string]string{"./a//b.csv": "a/b.csv", "/abs/x": "abs/x", "a/./b": "a/b", "dir/": "dir", `win\path.csv`: "win/path.csv"} {
		if got, ok := CleanName(in); !ok || got != want {
			t.Errorf("CleanName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"../x", "a/../../x", "", ".", "./"} {
		if got, ok := CleanName(bad); ok {
			t.Errorf("CleanName(%q) = %q, ok", bad, got)
		}
	}
	ms := []Member{{Name: "a.csv"}, {Name: "b.txt"}, {Name: "dir/", Type: Dir}, {Name: "dir/c.CSV"}}
	for expr, want := range map[string]int{"": 3, `\.csv$`: 1, `(?i)\.csv$`: 2, `^dir/`: 1, `.*`: 3} {
		f, err := CompileFilter(expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := FilterMembers(ms, f); len(got) != want {
			t.Errorf("filter %q: %d members, want %d", expr, len(got), want)
		}
	}
	if _, err := CompileFilter(`(?=x)`); err == nil {
		t.Error("look-ahead accepted")
	}
}

// countingReaderAt counts the reads made through it.
type countingReaderAt struct {
	r     io.ReaderAt
	reads atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.reads.Add(1)
	return c.r.ReadAt(p, off)
}

// OpenIn reads a member's bytes from the reader it is given: the
// directory parsed once (through its own reader) serves every member,
// and only the member's local header is read through the archive's
// reader. Damage in the bytes read is still caught by the CRC.
func TestZipOpenIn(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	files := writeTree(t, src)
	zp := filepath.Join(dir, "x.zip")
	runIn(t, src, "zip", "-q", "-r", zp, ".")
	raw, err := os.ReadFile(zp)
	if err != nil {
		t.Fatal(err)
	}
	own := &countingReaderAt{r: bytes.NewReader(raw)}
	z, err := OpenZip(own, int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	tested := 0
	for _, m := range z.Members() {
		if m.Type != Regular || len(files[m.Name]) < 100 {
			continue
		}
		tested++
		other := &countingReaderAt{r: bytes.NewReader(raw)}
		before := own.reads.Load()
		rc, err := z.OpenIn(m, other)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, files[m.Name]) {
			t.Fatalf("%s: %d bytes, %v", m.Name, len(got), err)
		}
		if n := own.reads.Load() - before; n > 1 {
			t.Errorf("%s: %d reads through the archive's reader, want the local header's one", m.Name, n)
		}
		if other.reads.Load() == 0 {
			t.Errorf("%s: nothing read through the reader given", m.Name)
		}
		// the same member from a copy whose bytes were damaged
		bad := bytes.Clone(raw)
		sr, ok, _ := z.ReaderAt(m)
		if ok {
			_, off, _ := sr.Outer()
			bad[off+10] ^= 0xff
		} else {
			// deflated: damage the middle of the compressed bytes
			f, _ := z.file(m)
			off, _ := f.DataOffset()
			bad[off+int64(f.CompressedSize64)/2] ^= 0xff
		}
		rc, err = z.OpenIn(m, bytes.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(rc)
		rc.Close()
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: damaged bytes read %v, want ErrCorrupt", m.Name, err)
		}
	}
	if tested < 2 {
		t.Fatalf("only %d members tested", tested)
	}
}
