package itest

// Issue 6 through a real mount: files compressed and archived by the
// standard tools at test time, read with cat, pandas and DuckDB, byte for
// byte the original.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needTools makes sure the compression tools are installed.
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			unavailable(t, "%s not installed (Debian packages: gzip bzip2 xz-utils zstd lz4 zip tar): %v", n, err)
		}
	}
}

// shIn runs a shell command line in dir.
func shIn(t *testing.T, dir, cmdline string) {
	t.Helper()
	r := run(t, toolTimeout, dir, "sh", "-c", cmdline)
	if r.err != nil {
		t.Fatalf("%s: %v\n%s%s", cmdline, r.err, r.stdout, r.stderr)
	}
}

// csvOf is a CSV of about n bytes with a header row, the same for a seed.
func csvOf(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 66))
	cities := strings.Fields("Oslo Lima Quito Accra Hanoi Perth Cork Bern Riga Kyiv Baku Male")
	var b bytes.Buffer
	b.WriteString("id,origin,destination,delay,distance\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%d,%s,%s,%d,%d\n", i, cities[r.IntN(len(cities))], cities[r.IntN(len(cities))], r.IntN(300)-20, 100+r.IntN(5000))
	}
	return b.Bytes()
}

func writeAll(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// compressFixture writes data.csv compressed by every tool, the same rows
// cut in three and archived by tar (plain and compressed) and zip, and a
// catalog over them. It returns the catalog, the original CSV, and the
// file every source must read as (mounted name → original path).
func compressFixture(t *testing.T) (catalog string, want map[string]string) {
	needTools(t, "gzip", "bzip2", "xz", "zstd", "lz4", "zip", "tar")
	dir := realTempDir(t)
	data := csvOf(1, 4<<20)
	writeAll(t, filepath.Join(dir, "orig/data.csv"), data)
	// three parts with one header each: the archives' CSV members
	lines := bytes.SplitAfter(data, []byte("\n"))
	header, rows := lines[0], lines[1:len(lines)-1]
	third := len(rows) / 3
	for i := 0; i < 3; i++ {
		part := append([]byte(nil), header...)
		end := (i + 1) * third
		if i == 2 {
			end = len(rows)
		}
		part = append(part, bytes.Join(rows[i*third:end], nil)...)
		writeAll(t, filepath.Join(dir, fmt.Sprintf("src/rows/part%d.csv", i)), part)
	}
	writeAll(t, filepath.Join(dir, "src/README"), []byte("what this is\n"))
	shIn(t, dir+"/orig", `gzip -k data.csv && bzip2 -k data.csv && xz -k -T1 data.csv && zstd -q -k data.csv &&
		lz4 -q data.csv data.csv.lz4 && head -c 1000000 data.csv | gzip -c > multi.csv.gz && tail -c +1000001 data.csv | gzip -c >> multi.csv.gz &&
		cp data.csv.zst nosuffix.csv`)
	shIn(t, dir+"/src", `tar cf ../a.tar README rows && tar czf ../a.tar.gz README rows && tar cjf ../a.tar.bz2 README rows &&
		tar cJf ../a.tar.xz README rows && tar --zstd -cf ../a.tar.zst README rows && zip -q -r ../a.zip README rows`)
	var cat strings.Builder
	cat.WriteString("sources:\n")
	want = map[string]string{}
	orig := filepath.Join(dir, "orig/data.csv")
	for _, f := range []string{"gz", "bz2", "xz", "zst", "lz4"} {
		fmt.Fprintf(&cat, "  c_%s: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/orig/data.csv.%s'}}\n", f, f)
		want["c_"+f+".csv"] = orig
	}
	cat.WriteString("  multi: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/orig/multi.csv.gz'}}\n")
	want["multi.csv"] = orig
	cat.WriteString("  magic: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/orig/nosuffix.csv'}}\n")
	want["magic.csv"] = orig
	for _, a := range []string{"tar", "tar.gz", "tar.bz2", "tar.xz", "tar.zst", "zip"} {
		n := "a_" + strings.ReplaceAll(a, ".", "_")
		fmt.Fprintf(&cat, "  %s: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/a.%s'}, cache: [{type: compressed, argkey: urlpath, regex_filter: '.*part'}]}\n", n, a)
		want[n+".csv"] = orig
		proto := "tar"
		if a == "zip" {
			proto = "zip"
		}
		fmt.Fprintf(&cat, "  m_%s: {driver: csv, args: {urlpath: '%s://rows/part1.csv::{{ CATALOG_DIR }}/a.%s'}}\n", n, proto, a)
		want["m_"+n+".csv"] = filepath.Join(dir, "src/rows/part1.csv")
		fmt.Fprintf(&cat, "  p_%s: {driver: parquet, args: {urlpath: '{{ CATALOG_DIR }}/a.%s'}}\n", n, a)
		want["p_"+n+".parquet/rows%2Fpart2.csv"] = filepath.Join(dir, "src/rows/part2.csv")
		want["p_"+n+".parquet/README"] = filepath.Join(dir, "src/README")
	}
	catalog = filepath.Join(dir, "catalog.yaml")
	writeAll(t, catalog, []byte(cat.String()))
	return catalog, want
}

// TestCompressedCat reads every compressed and archived source through
// the mount with cat, twice (the second read is served from the spool),
// and checks the size stat gives once the data was read.
func TestCompressedCat(t *testing.T) {
	catalog, want := compressFixture(t)
	d := mount(t, catalog)
	for name, orig := range want {
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			wb, err := os.ReadFile(orig)
			if err != nil {
				t.Fatal(err)
			}
			for pass := 1; pass <= 2; pass++ {
				r := run(t, ioTimeout, "", "cat", d.path(name))
				if r.err != nil {
					t.Fatalf("cat %s (pass %d): %v: %s", name, pass, r.err, r.stderr)
				}
				if diff := sameBytes([]byte(r.stdout), wb); diff != "" {
					t.Fatalf("cat %s (pass %d): %s", name, pass, diff)
				}
			}
			if fi := statFile(t, d.path(name)); fi.Size() != int64(len(wb)) {
				t.Errorf("stat %s after reading: size %d, want %d", name, fi.Size(), len(wb))
			}
		})
	}
	if t.Failed() {
		t.Logf("errors.txt:\n%s", readFile(t, d.path(".catalog/errors.txt")))
	}
	// the complete decompressions are kept in the mount's cache directory
	spools, _ := filepath.Glob(filepath.Join(filepath.Dir(d.Mnt), "cache", "spool", "*.spool"))
	if len(spools) == 0 {
		t.Errorf("no complete spool in the cache directory after reading")
	}
}

// TestCompressedPandasDuckDB reads the compressed sources with pandas and
// DuckDB, before anything else read them (so gzip, bzip2 and lz4 show no
// size yet and are read with direct I/O), and compares with the original.
func TestCompressedPandasDuckDB(t *testing.T) {
	needPython(t)
	needNode(t)
	catalog, want := compressFixture(t)
	d := mount(t, catalog)
	pandas, _ := filepath.Abs("testdata/pandas_compare.py")
	duck := filepath.Join(repoRoot, "scripts", "node", "compare.mjs")
	for _, name := range []string{"c_gz.csv", "c_bz2.csv", "c_xz.csv", "c_zst.csv", "c_lz4.csv", "multi.csv", "a_tar_gz.csv", "a_zip.csv", "m_a_tar_xz.csv"} {
		t.Run(name, func(t *testing.T) {
			r := run(t, toolTimeout, "", pythonBin, pandas, "csv", d.path(name), want[name])
			if r.err != nil || !strings.Contains(lastLine(r.stdout), `"equal": true`) {
				t.Errorf("pandas: %s differs from %s: %v\n%s%s", name, want[name], r.err, r.stdout, tail(r.stderr, 10))
			}
		})
	}
	for _, name := range []string{"c_gz.csv", "c_bz2.csv", "c_xz.csv", "c_zst.csv", "c_lz4.csv", "a_tar_bz2.csv", "a_tar_zst.csv", "m_a_zip.csv"} {
		t.Run("duckdb_"+name, func(t *testing.T) {
			// a fresh mount: DuckDB must be the first reader
			r := run(t, toolTimeout, "", "node", duck, "--format", "csv", d.path(name), want[name])
			if r.exitCode != 0 {
				t.Errorf("DuckDB: %s differs from %s (exit %d): %v\n%s%s", name, want[name], r.exitCode, r.err, r.stdout, tail(r.stderr, 10))
			}
		})
	}
}

// TestCompressedMmap maps compressed sources with mmap(MAP_SHARED), as
// some readers do: on the first pass (the file is open with direct I/O
// while the stream is decompressed) and again once the spool is complete.
func TestCompressedMmap(t *testing.T) {
	catalog, want := compressFixture(t)
	d := mount(t, catalog)
	for _, name := range []string{"c_zst.csv", "c_xz.csv", "c_gz.csv", "a_tar_gz.csv"} {
		wb, err := os.ReadFile(want[name])
		if err != nil {
			t.Fatal(err)
		}
		for pass := 1; pass <= 2; pass++ {
			got, err := withTimeout(t, "mmap of "+name, func() ([]byte, error) {
				f, err := os.Open(d.path(name))
				if err != nil {
					return nil, err
				}
				defer f.Close()
				fi, err := f.Stat() // exact once open, for every format
				if err != nil {
					return nil, err
				}
				m, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
				if err != nil {
					return nil, fmt.Errorf("mmap of %d bytes: %w", fi.Size(), err)
				}
				defer syscall.Munmap(m)
				return bytes.Clone(m), nil
			})
			if err != nil {
				t.Errorf("%s (pass %d): %v", name, pass, err)
				continue
			}
			if diff := sameBytes(got, wb); diff != "" {
				t.Errorf("mmap of %s (pass %d): %s", name, pass, diff)
			}
		}
	}
}

// TestCompressedMmapDamage: an mmap of a truncated gzip gives the good
// bytes and then SIGBUS on the page that holds the damage, never zeros in
// place of data (the kernel fills a short page-cache read with zeros).
func TestCompressedMmapDamage(t *testing.T) {
	needTools(t, "gzip")
	needPython(t)
	dir := realTempDir(t)
	data := csvOf(8, 3<<20)
	writeAll(t, filepath.Join(dir, "x.csv"), data)
	shIn(t, dir, "gzip -c x.csv | head -c 400000 > cut.csv.gz")
	catalog := filepath.Join(dir, "catalog.yaml")
	writeAll(t, catalog, []byte("sources:\n  cut: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/cut.csv.gz'}}\n"))
	d := mount(t, catalog)
	// a child process, which the SIGBUS kills: it reports each page it
	// read and found to be the original's
	prog := `
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
n = os.fstat(fd).st_size
m = mmap.mmap(fd, n, access=mmap.ACCESS_READ)
orig = open(sys.argv[2], "rb").read()
for off in range(0, n, 4096):
    chunk = m[off:min(off + 4096, n)]
    if chunk != orig[off:off + len(chunk)]:
        print("wrong", off, flush=True)
        sys.exit(0)
    print("good", off + len(chunk), flush=True)
print("all", flush=True)
`
	r := run(t, toolTimeout, "", pythonBin, "-c", prog, d.path("cut.csv"), filepath.Join(dir, "x.csv"))
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	last := strings.Fields(lines[len(lines)-1] + " ")
	switch {
	case len(last) == 0:
		t.Fatalf("no answer: %v %s", r.err, tail(r.stderr, 5))
	case last[0] == "wrong":
		t.Errorf("the mapping gives bytes that are not the original's at offset %s", last[1])
	case last[0] == "all":
		t.Errorf("the whole mapping read without a fault: the damage was read as data")
	case r.err == nil || !strings.Contains(r.err.Error(), "bus error"):
		t.Errorf("the reader ended with %v after %q, want SIGBUS", r.err, lines[len(lines)-1])
	default:
		good, _ := strconv.Atoi(last[1])
		if good == 0 || good%4096 != 0 {
			t.Errorf("SIGBUS after %d good bytes, want whole pages of the original before the damage", good)
		}
		t.Logf("SIGBUS after %d good bytes", good)
	}
}

// TestCompressedSeekAndDamage: random reads in any order of a gzip source
// not yet decompressed give the right bytes; a truncated gzip gives its
// bytes up to the damage, then EIO, and a log line naming it and the
// offset; the daemon keeps serving.
func TestCompressedSeekAndDamage(t *testing.T) {
	needTools(t, "gzip")
	d, data := mountMade(t, 7, 6<<20, "gzip -k x.csv && head -c 900000 x.csv.gz > cut.csv.gz", "x", "x.csv.gz", "cut", "cut.csv.gz")

	f, err := os.Open(d.path("x.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{5 << 20, 17, 3<<20 + 5, 0, 6<<20 - 10, 1 << 20} {
		buf := make([]byte, 100000)
		n, err := withTimeout(t, "pread", func() (int, error) { return f.ReadAt(buf, off) })
		if err != nil && n == 0 {
			t.Fatalf("pread at %d: %v", off, err)
		}
		end := min(off+int64(len(buf)), int64(len(data)))
		if !bytes.Equal(buf[:n], data[off:end]) {
			t.Errorf("pread at %d: not the original's bytes", off)
		}
	}
	f.Close()

	r := run(t, ioTimeout, "", "cat", d.path("cut.csv"))
	if r.err == nil || !strings.Contains(r.stderr, "Input/output error") {
		t.Errorf("cat of a truncated gzip: %v, stderr %q; want EIO", r.err, r.stderr)
	}
	if len(r.stdout) == 0 || !bytes.HasPrefix(data, []byte(r.stdout)) {
		t.Errorf("cat of a truncated gzip gave %d bytes, not the original's up to the damage", len(r.stdout))
	}
	g, err := os.Open(d.path("cut.csv"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = withTimeout(t, "pread past the damage", func() (int, error) { return g.ReadAt(make([]byte, 10), 5<<20) })
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("pread past the damage: %v, want EIO", err)
	}
	g.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(d.Output(), "cut.csv.gz") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	var line string
	for _, l := range strings.Split(d.Output(), "\n") {
		if strings.Contains(l, "corrupt") && strings.Contains(l, "cut.csv.gz") && strings.Contains(l, "offset=") {
			line = l
		}
	}
	if line == "" {
		t.Errorf("no log line names the damaged source and the offset:\n%s", tail(d.Output(), 20))
	} else if m := regexp.MustCompile(`offset=(\d+)`).FindStringSubmatch(line); m != nil {
		// cat reads 1 MiB at a time (st_blksize): the read that reaches
		// the damage still gives every good byte before it
		if at, _ := strconv.Atoi(m[1]); len(r.stdout) != at {
			t.Errorf("cat of a truncated gzip gave %d bytes; the damage is at %d", len(r.stdout), at)
		}
	}
	if got := readFile(t, d.path("x.csv")); !bytes.Equal(got, data) {
		t.Errorf("after the damage, x.csv reads wrong")
	}
}

// TestCompressedCacheLimit: decompressed data is kept under
// --cache-max-size: least recently used complete spools go first.
func TestCompressedCacheLimit(t *testing.T) {
	needTools(t, "gzip")
	dir := realTempDir(t)
	var cat strings.Builder
	cat.WriteString("sources:\n")
	datas := map[string][]byte{}
	for i := 0; i < 4; i++ {
		n := fmt.Sprintf("f%d", i)
		datas[n] = csvOf(uint64(100+i), 3<<20)
		writeAll(t, filepath.Join(dir, n+".csv"), datas[n])
		fmt.Fprintf(&cat, "  %s: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/%s.csv.gz'}}\n", n, n)
	}
	shIn(t, dir, "gzip f0.csv f1.csv f2.csv f3.csv")
	catalog := filepath.Join(dir, "catalog.yaml")
	writeAll(t, catalog, []byte(cat.String()))
	const limit = 8 << 20
	d := mount(t, catalog, "--cache-max-size", "8M")
	for _, n := range []string{"f0", "f1", "f2", "f3", "f1"} {
		if got := readFile(t, d.path(n+".csv")); !bytes.Equal(got, datas[n]) {
			t.Fatalf("%s reads wrong", n)
		}
	}
	var total int64
	ents, _ := os.ReadDir(filepath.Join(filepath.Dir(d.Mnt), "cache", "spool"))
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			total += fi.Size()
		}
	}
	if total == 0 || total > limit {
		t.Errorf("the spools hold %d bytes; want some, and at most the limit %d", total, limit)
	}
}

// TestSpoolsInCacheCommands: `cache ls` counts the decompressed files a
// mount kept, and `cache clear` removes them with the blocks.
func TestSpoolsInCacheCommands(t *testing.T) {
	catalog, want := compressFixture(t)
	d := mount(t, catalog)
	cacheDir := filepath.Join(filepath.Dir(d.Mnt), "cache")
	if got := readFile(t, d.path("c_gz.csv")); !bytes.Equal(got, readFile(t, want["c_gz.csv"])) {
		t.Fatal("c_gz.csv differs")
	}
	d.stop()
	r := run(t, toolTimeout, "", binPath, "cache", "ls", "--cache-dir", cacheDir)
	if r.err != nil || !strings.Contains(r.stdout, " decompressed files in ") {
		t.Fatalf("cache ls: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	r = run(t, toolTimeout, "", binPath, "cache", "clear", "--cache-dir", cacheDir)
	if r.err != nil || strings.Contains(r.stdout, "freed 0 B") {
		t.Fatalf("cache clear: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
	if spools, _ := filepath.Glob(filepath.Join(cacheDir, "spool", "*.spool")); len(spools) != 0 {
		t.Errorf("spools left after cache clear: %v", spools)
	}
}

// TestCompressedChecksumAtEnd: a zstd stream whose checksum (its last
// four bytes) is wrong decodes to the end before the damage shows, so the
// reads before it are served, and the read that reaches the end must
// still fail: cat gets EIO, not a whole file that was never verified.
func TestCompressedChecksumAtEnd(t *testing.T) {
	needTools(t, "zstd")
	d, data := mountMade(t, 9, 12<<20, "zstd -q -k x.csv && cp x.csv.zst bad.csv.zst && printf '\\377' | dd of=bad.csv.zst bs=1 seek=$(( $(stat -c %s bad.csv.zst) - 1 )) conv=notrunc status=none",
		"x", "x.csv.zst", "bad", "bad.csv.zst")
	if got := run(t, ioTimeout, "", "cat", d.path("x.csv")); got.err != nil || got.stdout != string(data) {
		t.Fatalf("cat x.csv: %v, %d bytes (want %d)", got.err, len(got.stdout), len(data))
	}
	r := run(t, ioTimeout, "", "cat", d.path("bad.csv"))
	if r.err == nil || !strings.Contains(r.stderr, "Input/output error") {
		t.Errorf("cat of a zstd with a bad checksum: %v, stderr %q; want EIO", r.err, r.stderr)
	}
	if !bytes.HasPrefix(data, []byte(r.stdout)) || len(r.stdout) == len(data) {
		t.Errorf("cat of a zstd with a bad checksum gave %d of %d bytes: want fewer, all the original's", len(r.stdout), len(data))
	}
}

// TestOpenAcrossSpoolCompletion: a handle opened while a compressed file
// was being decompressed (served by the daemon) and one opened after
// (passthrough to the complete spool, as root) live side by side; closing
// the first must not break the second, nor any later open. go-fuse drops
// an inode's backing file when any handle of the inode closes, and the
// kernel then refused the next open with EIO.
func TestOpenAcrossSpoolCompletion(t *testing.T) {
	needTools(t, "zstd")
	d, data := mountMade(t, 11, 3<<20, "zstd -q --rm x.csv", "x", "x.csv.zst")
	readAll := func(f *os.File, what string) {
		t.Helper()
		got, err := withTimeout(t, what, func() (int, error) {
			b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<40))
			if err == nil && !bytes.Equal(b, data) {
				err = fmt.Errorf("%d bytes, not the original's %d", len(b), len(data))
			}
			return len(b), err
		})
		if err != nil {
			t.Fatalf("%s: %v (%d bytes)", what, err, got)
		}
	}
	open := func(what string) *os.File {
		t.Helper()
		f, err := os.Open(d.path("x.csv"))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Cleanup(func() { f.Close() }) // before the unmount, on a failure too
		return f
	}
	first := open("open while decompressing")
	readAll(first, "read while decompressing")
	time.Sleep(500 * time.Millisecond) // the spool is complete and kept
	second := open("open of the complete spool")
	first.Close()
	readAll(second, "read of the second handle after the first closed")
	for i := 0; i < 5; i++ {
		f := open(fmt.Sprintf("open #%d after the first closed", i+3))
		readAll(f, fmt.Sprintf("read #%d", i+3))
		f.Close()
	}
	second.Close()
	if r := run(t, ioTimeout, "", "cat", d.path("x.csv")); r.err != nil || r.stdout != string(data) {
		t.Errorf("cat at the end: %v, %d bytes", r.err, len(r.stdout))
	}
}

// mountMade writes a generated CSV of size bytes (seed) as x.csv in a new
// directory, runs script there (the tools make the compressed files from
// it), and mounts a catalog of one csv source per name and file pair.
func mountMade(t *testing.T, seed uint64, size int, script string, nameFile ...string) (*daemon, []byte) {
	t.Helper()
	dir := realTempDir(t)
	data := csvOf(seed, size)
	writeAll(t, filepath.Join(dir, "x.csv"), data)
	shIn(t, dir, script)
	var cat strings.Builder
	cat.WriteString("sources:\n")
	for i := 0; i+1 < len(nameFile); i += 2 {
		fmt.Fprintf(&cat, "  %s: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/%s'}}\n", nameFile[i], nameFile[i+1])
	}
	catalog := filepath.Join(dir, "catalog.yaml")
	writeAll(t, catalog, []byte(cat.String()))
	return mount(t, catalog), data
}
