package engine

// Transparent decompression and archives (issue 6), through the engine:
// every input is made by the standard tool at test time.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intakefs/intakefs/cache/decomp"
)

// needTool finds a tool the test makes its input with: a missing one
// fails under CI and skips elsewhere.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		msg := fmt.Sprintf("%s not installed (Debian packages: gzip bzip2 xz-utils zstd lz4 zip tar)", name)
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// sh runs a shell command line in dir (the tools take files there).
func sh(t *testing.T, dir, cmdline string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", cmdline)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", cmdline, err, out)
	}
}

// csvRows is a CSV of about n bytes, with a header, the same for a seed.
func csvRows(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 6))
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima")
	var b bytes.Buffer
	b.WriteString("id,name,value,note\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%d,%s,%d.%02d,%s %s\n", i, words[r.IntN(len(words))], r.IntN(100000), r.IntN(100),
			words[r.IntN(len(words))], words[r.IntN(len(words))])
	}
	return b.Bytes()
}

func writeBytes(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readNode(t *testing.T, f *FS, p string) []byte {
	t.Helper()
	s := mustRead(t, f, p)
	return []byte(s)
}

// walkFile is the file at p.
func walkFile(t *testing.T, f *FS, p string) File {
	t.Helper()
	n, err := f.Walk(context.Background(), p)
	if err != nil {
		t.Fatalf("walk %s: %v", p, err)
	}
	file, ok := n.(File)
	if !ok {
		t.Fatalf("%s is not a file", p)
	}
	return file
}

func statSize(t *testing.T, f *FS, p string) int64 {
	t.Helper()
	st, err := walkFile(t, f, p).Stat(context.Background())
	if err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	return st.Size
}

// TestDecompressEveryFormat: a file compressed by each tool reads back as
// the original under its name without the suffix; sizes are exact where
// the format records them, and known after one read where it does not.
func TestDecompressEveryFormat(t *testing.T) {
	for _, tool := range []string{"gzip", "bzip2", "xz", "zstd", "lz4"} {
		needTool(t, tool)
	}
	dir := t.TempDir()
	data := csvRows(1, 6<<20) // compressed, more than the 1 MiB counted at planning
	small := csvRows(2, 50<<10)
	writeBytes(t, filepath.Join(dir, "d/data.csv"), data)
	writeBytes(t, filepath.Join(dir, "d/small.csv"), small)
	sh(t, dir+"/d", `gzip -k data.csv && bzip2 -k data.csv && xz -k -T1 data.csv && zstd -q -k data.csv && lz4 -q data.csv data.csv.lz4 &&
		gzip -c small.csv > small.csv.gz &&
		head -c 3000000 data.csv | gzip -c > multi.csv.gz && tail -c +3000001 data.csv | gzip -1 -c >> multi.csv.gz &&
		cp data.csv.gz noext.csv && cp data.csv.zst hidden.bin && cp data.csv.gz arg.dat && cp data.csv.gz kw.dat`)
	cat := `sources:
  gz: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/d/data.csv.gz'}}
  bz2: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/d/data.csv.bz2'}}
  xz: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/d/data.csv.xz'}}
  zst: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/d/data.csv.zst'}}
  lz4: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/d/data.csv.lz4'}}
  small: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/d/small.csv.gz'}}
  multi: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/d/multi.csv.gz'}}
  magic: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/d/noext.csv'}}
  magic2: {driver: textfiles, args: {urlpath: '{{ CATALOG_DIR }}/d/hidden.bin'}}
  byarg: {driver: textfiles, args: {urlpath: '{{ CATALOG_DIR }}/d/arg.dat', compression: gzip}}
  inferarg: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/d/noext.csv', compression: infer}}
  rawarg: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/d/data.csv.gz', compression: null}}
  kwarg: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/d/kw.dat', csv_kwargs: {compression: gzip}}}
`
	writeFile(t, filepath.Join(dir, "cat.yaml"), cat)
	f := newFS(t, dir, "cat.yaml")
	gzBytes, _ := os.ReadFile(filepath.Join(dir, "d/data.csv.gz"))
	for _, c := range []struct {
		path      string
		want      []byte
		sizeAtFst int64 // the size stat gives before any read (0: not known yet)
	}{
		{"gz.csv", data, 0},
		{"bz2.csv", data, 0},
		{"xz.csv", data, int64(len(data))},
		{"zst.csv", data, int64(len(data))},
		{"lz4.csv", data, 0},
		{"small.csv", small, int64(len(small))},
		{"multi.csv", data, 0},
		{"magic.csv", data, 0},
		{"magic2.bin", data, int64(len(data))},
		{"byarg.dat", data, 0},
		// infer goes by name only: noext.csv is read as it is
		{"inferarg.csv", gzBytes, int64(len(gzBytes))},
		{"rawarg.csv", gzBytes, int64(len(gzBytes))},
		{"kwarg.dat", data, 0},
	} {
		t.Run(c.path, func(t *testing.T) {
			if got := statSize(t, f, c.path); got != c.sizeAtFst {
				t.Errorf("size before reading = %d, want %d", got, c.sizeAtFst)
			}
			got := readNode(t, f, c.path)
			if !bytes.Equal(got, c.want) {
				t.Fatalf("read %d bytes, not the original %d", len(got), len(c.want))
			}
			if got := statSize(t, f, c.path); got != int64(len(c.want)) {
				t.Errorf("size after reading = %d, want %d", got, len(c.want))
			}
		})
	}
	if got := names(t, f, ""); !strings.Contains(joinLines(got), "gz.csv") {
		t.Errorf("listing %v lacks gz.csv", got)
	}
}

// makeArchives builds tars (plain and compressed by each tool) and zips
// of three CSVs with one header, a README and a sub-directory.
func makeArchives(t *testing.T, dir string) (parts [][]byte) {
	for _, tool := range []string{"gzip", "bzip2", "xz", "zstd", "tar", "zip"} {
		needTool(t, tool)
	}
	for i := 0; i < 3; i++ {
		b := csvRows(uint64(10+i), 300<<10)
		if i == 2 {
			b = b[:len(b)-1] // the last row without its newline
		}
		parts = append(parts, b)
		writeBytes(t, filepath.Join(dir, fmt.Sprintf("src/sub/part%d.csv", i)), b)
	}
	writeBytes(t, filepath.Join(dir, "src/README.txt"), []byte("not data\n"))
	sh(t, dir+"/src", `tar cf ../a.tar README.txt sub && tar czf ../a.tar.gz README.txt sub && tar cjf ../a.tar.bz2 README.txt sub &&
		tar cJf ../a.tar.xz README.txt sub && tar --zstd -cf ../a.tar.zst README.txt sub && cp ../a.tar.gz ../a.tgz &&
		zip -q -r ../a.zip README.txt sub && zip -q -r -0 ../stored.zip README.txt sub`)
	return parts
}

// joinCSV is what the parts concatenate to: one header, rows kept apart.
func joinCSV(parts [][]byte) []byte {
	var b bytes.Buffer
	for i, p := range parts {
		if i > 0 {
			p = p[bytes.IndexByte(p, '\n')+1:]
		}
		b.Write(p)
		if i < len(parts)-1 && !bytes.HasSuffix(p, []byte("\n")) {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// TestArchives: tar (plain and compressed) and zip (deflated and stored)
// are the parts of a multi-file source: CSV members concatenate into one
// file, other formats are a directory of members; zip:// and tar://
// chains pick one member; a cache block's regex_filter selects members.
func TestArchives(t *testing.T) {
	dir := t.TempDir()
	parts := makeArchives(t, dir)
	var cat strings.Builder
	cat.WriteString("sources:\n")
	kinds := []string{"tar", "tar.gz", "tgz", "tar.bz2", "tar.xz", "tar.zst", "zip"}
	for i, k := range kinds {
		fmt.Fprintf(&cat, "  csv%d: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/a.%s'}, cache: [{type: compressed, regex_filter: '.*part'}]}\n", i, k)
		fmt.Fprintf(&cat, "  dir%d: {driver: parquet, args: {urlpath: '{{ CATALOG_DIR }}/a.%s'}}\n", i, k)
		fmt.Fprintf(&cat, "  one%d: {driver: csv, args: {urlpath: '%s://sub/part1.csv::{{ CATALOG_DIR }}/a.%s'}}\n", i, map[bool]string{true: "zip", false: "tar"}[k == "zip"], k)
	}
	cat.WriteString("  stored: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/stored.zip'}, cache: [{type: compressed, decomp: zip, regex_filter: 'part[02]'}]}\n")
	writeFile(t, filepath.Join(dir, "cat.yaml"), cat.String())
	f := newFS(t, dir, "cat.yaml")
	want := joinCSV(parts)
	for i, k := range kinds {
		t.Run(k, func(t *testing.T) {
			if got := readNode(t, f, fmt.Sprintf("csv%d.csv", i)); !bytes.Equal(got, want) {
				t.Errorf("csv%d.csv: %d bytes, want the %d of the members joined", i, len(got), len(want))
			}
			if got := statSize(t, f, fmt.Sprintf("csv%d.csv", i)); got != int64(len(want)) {
				t.Errorf("csv%d.csv size %d, want %d", i, got, len(want))
			}
			got := names(t, f, fmt.Sprintf("dir%d.parquet", i))
			if joinLines(got) != joinLines([]string{"README.txt", "sub%2Fpart0.csv", "sub%2Fpart1.csv", "sub%2Fpart2.csv"}) {
				t.Errorf("dir%d.parquet lists %v", i, got)
			}
			if got := readNode(t, f, fmt.Sprintf("dir%d.parquet/sub%%2Fpart2.csv", i)); !bytes.Equal(got, parts[2]) {
				t.Errorf("member part2: %d bytes, want %d", len(got), len(parts[2]))
			}
			if got := readNode(t, f, fmt.Sprintf("one%d.csv", i)); !bytes.Equal(got, parts[1]) {
				t.Errorf("chain member part1: %d bytes, want %d", len(got), len(parts[1]))
			}
		})
	}
	if got := readNode(t, f, "stored.csv"); !bytes.Equal(got, joinCSV([][]byte{parts[0], parts[2]})) {
		t.Errorf("stored zip with regex_filter: %d bytes", len(got))
	}
}

// TestGzipSeekBackwardsUncached: reads at any offset, in any order, of a
// gzip stream that is not spooled yet, give the right bytes.
func TestGzipSeekBackwardsUncached(t *testing.T) {
	needTool(t, "gzip")
	dir := t.TempDir()
	data := csvRows(3, 8<<20)
	writeBytes(t, filepath.Join(dir, "x.csv"), data)
	sh(t, dir, "gzip x.csv")
	writeFile(t, filepath.Join(dir, "cat.yaml"), "sources:\n  x: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/x.csv.gz'}}\n")
	f := newFS(t, dir, "cat.yaml")
	n, err := f.Walk(context.Background(), "x.csv")
	if err != nil {
		t.Fatal(err)
	}
	h, err := n.(File).Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	offs := []int64{7 << 20, 5, 3<<20 + 17, 1, 8<<20 - 100, 0, 6 << 20}
	var wg sync.WaitGroup
	for _, off := range offs {
		wg.Add(1)
		go func(off int64) {
			defer wg.Done()
			buf := make([]byte, 200<<10)
			k, err := h.ReadAt(ctx, buf, off)
			if err != nil && !errors.Is(err, io.EOF) {
				t.Errorf("read at %d: %v", off, err)
				return
			}
			end := min(off+int64(len(buf)), int64(len(data)))
			if !bytes.Equal(buf[:k], data[off:end]) {
				t.Errorf("read at %d: wrong bytes", off)
			}
		}(off)
	}
	wg.Wait()
}

// syncBuf is a log sink the test reads.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCorruptInput: a truncated gzip and a zip with a damaged member give
// their bytes up to the damage, then an error matching decomp.ErrCorrupt
// (EIO at the mount), logged with the source and the offset; other
// sources keep working.
func TestCorruptInput(t *testing.T) {
	needTool(t, "gzip")
	needTool(t, "zip")
	dir := t.TempDir()
	data := csvRows(4, 4<<20)
	writeBytes(t, filepath.Join(dir, "x.csv"), data)
	writeBytes(t, filepath.Join(dir, "ok.csv"), data[:1000])
	sh(t, dir, "gzip -k x.csv && zip -q z.zip x.csv")
	gz, _ := os.ReadFile(filepath.Join(dir, "x.csv.gz"))
	writeBytes(t, filepath.Join(dir, "trunc.csv.gz"), gz[:len(gz)/2])
	z, _ := os.ReadFile(filepath.Join(dir, "z.zip"))
	z[len(z)/2] ^= 0xff // inside the member's deflate stream
	writeBytes(t, filepath.Join(dir, "bad.zip"), z)
	writeFile(t, filepath.Join(dir, "cat.yaml"), `sources:
  trunc: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/trunc.csv.gz'}}
  badzip: {driver: csv, args: {urlpath: 'zip://x.csv::{{ CATALOG_DIR }}/bad.zip'}}
  ok: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/ok.csv'}}
`)
	var logs syncBuf
	f, err := New(filepath.Join(dir, "cat.yaml"), Options{Cwd: dir, SpoolDir: t.TempDir(), Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	for _, src := range []string{"trunc", "badzip"} {
		got, err := readPath(t, f, src+".csv")
		if !errors.Is(err, decomp.ErrCorrupt) {
			t.Fatalf("%s: error %v, want corrupt data", src, err)
		}
		// gzip's truncation is found where the input ends; a flipped bit
		// in a deflate stream only at the member's CRC-32, at its end
		if src == "trunc" && (len(got) == 0 || !bytes.HasPrefix(data, []byte(got))) {
			t.Errorf("%s: the %d bytes before the damage are not the original's", src, len(got))
		}
		line := ""
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "corrupt") && strings.Contains(l, map[string]string{"trunc": "trunc.csv.gz", "badzip": "bad.zip"}[src]) {
				line = l
			}
		}
		if !strings.Contains(line, "offset=") {
			t.Errorf("%s: no log line naming the source and offset in:\n%s", src, logs.String())
		}
	}
	if got := mustRead(t, f, "ok.csv"); got != string(data[:1000]) {
		t.Errorf("another source after the damage: %q", got[:20])
	}
}

// TestSpoolReuseAndLimit: a complete decompression is kept: a re-read,
// and a new FS over the same spool directory (a remount), decompress
// nothing and know the size at once; the spools stay under their limit.
func TestSpoolReuseAndLimit(t *testing.T) {
	needTool(t, "gzip")
	dir := t.TempDir()
	var srcs strings.Builder
	srcs.WriteString("sources:\n")
	datas := map[string][]byte{}
	for i := 0; i < 3; i++ {
		d := csvRows(uint64(20+i), 3<<20)
		name := fmt.Sprintf("f%d", i)
		datas[name] = d
		writeBytes(t, filepath.Join(dir, name+".csv"), d)
		fmt.Fprintf(&srcs, "  %s: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/%s.csv.gz'}}\n", name, name)
	}
	sh(t, dir, "gzip f0.csv f1.csv f2.csv")
	writeFile(t, filepath.Join(dir, "cat.yaml"), srcs.String())
	spoolDir := t.TempDir()
	limit := int64(7 << 20) // two of the three fit
	open := func() *FS {
		f, err := New(filepath.Join(dir, "cat.yaml"), Options{Cwd: dir, SpoolDir: spoolDir, SpoolLimit: func() int64 { return limit }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Close)
		return f
	}
	f := open()
	for _, name := range []string{"f0", "f0", "f1"} {
		if got := readNode(t, f, name+".csv"); !bytes.Equal(got, datas[name]) {
			t.Fatalf("%s: wrong bytes", name)
		}
	}
	if n := f.spools.opened.Load(); n != 2 {
		t.Errorf("%d decompressions for f0 twice and f1, want 2", n)
	}
	f2 := open()
	if got := statSize(t, f2, "f1.csv"); got != int64(len(datas["f1"])) {
		t.Errorf("after a remount f1's size is %d, want %d at once", got, len(datas["f1"]))
	}
	if got := readNode(t, f2, "f1.csv"); !bytes.Equal(got, datas["f1"]) {
		t.Fatal("f1 after a remount: wrong bytes")
	}
	if n := f2.spools.opened.Load(); n != 0 {
		t.Errorf("a re-read after a remount decompressed %d times", n)
	}
	readNode(t, f2, "f2.csv")
	if tot := f2.spools.Total(); tot > limit {
		t.Errorf("spools hold %d bytes, over the limit %d", tot, limit)
	}
	var onDisk int64
	ents, _ := os.ReadDir(spoolDir)
	for _, e := range ents {
		fi, _ := e.Info()
		onDisk += fi.Size()
	}
	if onDisk > limit {
		t.Errorf("the spool directory holds %d bytes, over the limit %d", onDisk, limit)
	}
}

// TestCompressedGlobConcat: a glob of gzipped CSVs is one file with the
// header once, even when the sizes and last bytes are only known by
// decompressing.
func TestCompressedGlobConcat(t *testing.T) {
	needTool(t, "gzip")
	dir := t.TempDir()
	var parts [][]byte
	for i := 0; i < 3; i++ {
		b := csvRows(uint64(30+i), 2<<20)
		if i == 0 {
			b = b[:len(b)-1]
		}
		parts = append(parts, b)
		writeBytes(t, filepath.Join(dir, fmt.Sprintf("d/p%d.csv", i)), b)
	}
	sh(t, dir+"/d", "gzip p0.csv p1.csv p2.csv")
	writeFile(t, filepath.Join(dir, "cat.yaml"), "sources:\n  g: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/d/p*.csv.gz'}}\n  pq: {driver: parquet, args: {urlpath: '{{ CATALOG_DIR }}/d/p*.csv.gz'}}\n")
	f := newFS(t, dir, "cat.yaml")
	want := joinCSV(parts)
	if got := statSize(t, f, "g.csv"); got != 0 {
		t.Errorf("size before reading %d, want 0 (not known)", got)
	}
	if got := readNode(t, f, "g.csv"); !bytes.Equal(got, want) {
		t.Fatalf("g.csv: %d bytes, want %d", len(got), len(want))
	}
	if got := statSize(t, f, "g.csv"); got != int64(len(want)) {
		t.Errorf("size after reading %d, want %d", got, len(want))
	}
	if got := names(t, f, "pq.csv"); joinLines(got) != "p0.csv\np1.csv\np2.csv" {
		t.Errorf("parts %v", got)
	}
}

// An open file says it decompresses (fs then opens it with direct I/O)
// while no complete spool holds its data, and not once one does; a plain
// file never does.
func TestDecompressingUntilSpooled(t *testing.T) {
	needTool(t, "zstd")
	dir := t.TempDir()
	data := csvRows(4, 1<<20)
	writeBytes(t, filepath.Join(dir, "x.csv"), data)
	writeBytes(t, filepath.Join(dir, "p.csv"), data)
	sh(t, dir, "zstd -q --rm x.csv")
	writeFile(t, filepath.Join(dir, "cat.yaml"), "sources:\n  x: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/x.csv.zst'}}\n  p: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/p.csv'}}\n")
	f := newFS(t, dir, "cat.yaml")
	ctx := context.Background()
	decompressing := func(p string) bool {
		h, err := walkFile(t, f, p).Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		d, ok := h.(Decompressor)
		return ok && d.Decompressing()
	}
	if !decompressing("x.csv") {
		t.Errorf("x.csv: not decompressing before its first read")
	}
	if got := readNode(t, f, "x.csv"); !bytes.Equal(got, data) {
		t.Fatal("x.csv differs")
	}
	if decompressing("x.csv") {
		t.Errorf("x.csv: still decompressing once read to the end")
	}
	if decompressing("p.csv") {
		t.Errorf("p.csv: a plain file decompressing")
	}
}

// A joined CSV whose members cannot be decompressed within the spool
// limit fails, and the failure is remembered: remaking the plan (as each
// lookup does once it expires) decompresses nothing again and evicts no
// other source's spool.
func TestOverLimitArchiveFailureRemembered(t *testing.T) {
	needTool(t, "tar")
	needTool(t, "gzip")
	dir := t.TempDir()
	for i := 0; i < 3; i++ {
		writeBytes(t, filepath.Join(dir, "m", fmt.Sprintf("p%d.csv", i)), csvRows(uint64(40+i), 3<<20))
	}
	small := csvRows(50, 1<<20)
	writeBytes(t, filepath.Join(dir, "x.csv"), small)
	sh(t, dir, "tar -czf a.tar.gz m && gzip x.csv")
	writeFile(t, filepath.Join(dir, "cat.yaml"), "sources:\n  a: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/a.tar.gz'}}\n  x: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/x.csv.gz'}}\n")
	limit := int64(4 << 20)
	f, err := New(filepath.Join(dir, "cat.yaml"), Options{Cwd: dir, SpoolDir: t.TempDir(), SpoolLimit: func() int64 { return limit }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	f.TTL = time.Nanosecond // every lookup remakes its plan
	if got := readNode(t, f, "x.csv"); !bytes.Equal(got, small) {
		t.Fatal("x.csv: wrong bytes")
	}
	ctx := context.Background()
	open := func() error {
		n, err := f.Walk(ctx, "a.csv")
		if err != nil {
			return err
		}
		h, err := n.(File).Open(ctx)
		if err == nil {
			h.Close()
		}
		return err
	}
	if err := open(); !errors.Is(err, decomp.ErrSpoolFull) {
		t.Fatalf("a.csv over the limit: %v, want ErrSpoolFull", err)
	}
	before := f.spools.opened.Load()
	for i := 0; i < 5; i++ {
		time.Sleep(time.Millisecond)
		if err := open(); !errors.Is(err, decomp.ErrSpoolFull) {
			t.Fatalf("a.csv again: %v, want the same failure", err)
		}
	}
	if n := f.spools.opened.Load() - before; n != 0 {
		t.Errorf("remaking the plan five times decompressed %d times", n)
	}
	if !f.spools.complete(spoolKeyOf(t, f, "x.csv")) {
		t.Errorf("x.csv's complete spool was evicted for a plan that could not fit")
	}
}

// spoolKeyOf is the spool key of a one-stream file.
func spoolKeyOf(t *testing.T, f *FS, p string) string {
	t.Helper()
	d := walkFile(t, f, p).(*dataFile)
	pl := d.pinned(context.Background())
	if pl == nil || len(pl.Items) != 1 || pl.Items[0].Key == "" {
		t.Fatalf("%s: not one spooled stream", p)
	}
	return pl.Items[0].Key
}
