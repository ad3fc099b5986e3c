package engine

// Archives of many members, members that share a name, stored zip members
// with a bad CRC-32 and tars cut short: every archive is made by python3's
// zipfile/tarfile or the tar and gzip tools at test time.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intakefs/intakefs/cache/decomp"
)

// python runs a python3 script in dir.
func python(t *testing.T, dir, script string) {
	t.Helper()
	needTool(t, "python3")
	p := filepath.Join(t.TempDir(), "make.py")
	writeFile(t, p, script)
	sh(t, dir, "python3 "+p)
}

// newLoggedFS is newFS with its log kept for the test to read.
func newLoggedFS(t *testing.T, dir, root string) (*FS, *syncBuf) {
	t.Helper()
	var logs syncBuf
	f, err := New(filepath.Join(dir, root), Options{Cwd: dir, SpoolDir: filepath.Join(t.TempDir(), "spool"),
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(f.Close)
	return f, &logs
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("counting open descriptors: %v", err)
	}
	return len(ents)
}

// settledFDs is how many descriptors more than before the process has,
// waiting up to 2 s for the count to fall to want: descriptors of work
// that just ended close on other goroutines.
func settledFDs(t *testing.T, before, want int) int {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		d := openFDs(t) - before
		if d <= want || time.Now().After(deadline) {
			return d
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func openNode(t *testing.T, f *FS, p string) Handle {
	t.Helper()
	h, err := walkFile(t, f, p).Open(context.Background())
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	return h
}

// readHandle reads an open file to its end.
func readHandle(t *testing.T, h Handle) ([]byte, error) {
	t.Helper()
	var out []byte
	buf := make([]byte, 128<<10)
	for {
		n, err := h.ReadAt(context.Background(), buf, int64(len(out)))
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if n == 0 {
			return out, io.ErrNoProgress
		}
	}
}

// TestManyMemberParts: a directory of 20,000 parts is listed and every
// part looked up by name (quadratic before: each lookup built every node
// and scanned them); a part is the same node whichever way it is reached.
func TestManyMemberParts(t *testing.T) {
	dir := t.TempDir()
	const n = 20000
	python(t, dir, fmt.Sprintf(`import zipfile
with zipfile.ZipFile("many.zip", "w") as z:
    for i in range(%d):
        z.writestr("d/p%%05d.bin" %% i, "x%%d\n" %% i)
`, n))
	writeFile(t, filepath.Join(dir, "cat.yaml"), "sources:\n  many: {driver: parquet, args: {urlpath: '{{ CATALOG_DIR }}/many.zip'}}\n")
	f := newFS(t, dir, "cat.yaml")
	ctx := context.Background()
	dn, err := f.Walk(ctx, "many.parquet")
	if err != nil {
		t.Fatal(err)
	}
	d := dn.(Dir)
	kids, err := d.ReadDir(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(kids) != n {
		t.Fatalf("%d parts listed, want %d", len(kids), n)
	}
	again, _ := d.ReadDir(ctx)
	for i, k := range kids {
		got, err := d.Lookup(ctx, k.Name())
		if err != nil {
			t.Fatalf("lookup %s: %v", k.Name(), err)
		}
		if got != k || again[i] != k {
			t.Fatalf("%s: lookup and listings give different nodes", k.Name())
		}
	}
	if _, err := d.Lookup(ctx, "d%2Fnope.bin"); !errors.Is(err, ErrNotFound) {
		t.Errorf("lookup of a missing part: %v", err)
	}
	if got := mustRead(t, f, "many.parquet/d%2Fp12345.bin"); got != "x12345\n" {
		t.Errorf("part 12345 reads %q", got)
	}
}

// TestManyMemberCSVJoin: a CSV join of thousands of members (a stored
// zip, a tar, a deflated zip) remembers one short copy of each header
// line, and an open file holds a few descriptors, not one per member.
func TestManyMemberCSVJoin(t *testing.T) {
	dir := t.TempDir()
	const n = 3000
	python(t, dir, fmt.Sprintf(`import zipfile, tarfile, io
def body(i):
    return ("id,v\n%%d,%%d\n" %% (i, i * i)).encode()
with zipfile.ZipFile("stored.zip", "w") as z:
    for i in range(%[1]d):
        z.writestr("m/%%05d.csv" %% i, body(i))
with zipfile.ZipFile("deflated.zip", "w", compression=zipfile.ZIP_DEFLATED) as z:
    for i in range(300):
        z.writestr("m/%%05d.csv" %% i, body(i))
with tarfile.open("many.tar", "w") as t:
    for i in range(%[1]d):
        b = body(i)
        ti = tarfile.TarInfo("m/%%05d.csv" %% i)
        ti.size = len(b)
        t.addfile(ti, io.BytesIO(b))
`, n))
	writeFile(t, filepath.Join(dir, "cat.yaml"), `sources:
  stored: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/stored.zip'}}
  deflated: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/deflated.zip'}}
  tar: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/many.tar'}}
`)
	want := func(k int) []byte {
		var b bytes.Buffer
		b.WriteString("id,v\n")
		for i := 0; i < k; i++ {
			fmt.Fprintf(&b, "%d,%d\n", i, i*i)
		}
		return b.Bytes()
	}
	f := newFS(t, dir, "cat.yaml")
	if got := names(t, f, ""); !strings.Contains(joinLines(got), "stored.csv") {
		t.Fatalf("listing %v", got)
	}
	for _, c := range []struct {
		src     string
		members int
		fds     int // descriptors an open file may add
	}{
		{"stored", n, 3},
		{"tar", n, 3},
		// a spool kept: its file, and the object while it decompresses
		{"deflated", 300, 2*maxIdleSpools + 3},
	} {
		t.Run(c.src, func(t *testing.T) {
			dn, err := f.Walk(context.Background(), c.src+".csv")
			if err != nil {
				t.Fatal(err)
			}
			p := dn.(*dataFile).plan
			if p == nil || len(p.Items) != c.members {
				t.Fatalf("plan %v", p)
			}
			for i := range p.Items {
				v, ok := f.spools.recall("header\x00" + itemID(&p.Items[i]))
				if !ok {
					continue // the memo may have been emptied on the way
				}
				line := v.([]byte)
				if string(line) != "id,v\n" || cap(line) != len(line) {
					t.Fatalf("member %d: header remembered as %q with capacity %d", i, line, cap(line))
				}
			}
			before := openFDs(t)
			h := openNode(t, f, c.src+".csv")
			if d := openFDs(t) - before; d > c.fds {
				t.Errorf("opening %s added %d descriptors", c.src, d)
			}
			got, err := readHandle(t, h)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if !bytes.Equal(got, want(c.members)) {
				t.Errorf("read %d bytes, want the %d of the members joined", len(got), len(want(c.members)))
			}
			// what it holds once the streams that just ended have
			// closed theirs (a producer keeps its descriptor until its
			// spool is persisted, off the reader's path)
			if d := settledFDs(t, before, c.fds); d > c.fds {
				t.Errorf("reading %s to its end holds %d descriptors", c.src, d)
			}
			h.Close()
			if d := settledFDs(t, before, 0); d > 0 {
				t.Errorf("%d descriptors left open after close", d)
			}
		})
	}
	// the 300 deflated members were each decompressed by a stream of its
	// own; the zip's directory was parsed for them once
	if n := f.zips.parsed.Load(); n != 1 {
		t.Errorf("the deflated zip's directory was parsed %d times, want once", n)
	}
}

// At most zipDirsKept parsed directories are kept, the least recently
// used forgotten first.
func TestZipDirsKept(t *testing.T) {
	var zs zipDirs
	key := func(i int) string { return fmt.Sprintf("z%d", i) }
	for i := 0; i < zipDirsKept; i++ {
		zs.add(key(i), &decomp.ZipArchive{})
	}
	zs.mu.Lock()
	zs.touchLocked(key(0)) // used again: now the most recent
	zs.mu.Unlock()
	zs.add(key(zipDirsKept), &decomp.ZipArchive{})
	if len(zs.m) != zipDirsKept || len(zs.order) != zipDirsKept {
		t.Fatalf("%d kept (%d in order), want %d", len(zs.m), len(zs.order), zipDirsKept)
	}
	if zs.m[key(1)] != nil {
		t.Error("the least recently used directory is still kept")
	}
	if zs.m[key(0)] == nil || zs.m[key(zipDirsKept)] == nil {
		t.Error("a recently used directory was forgotten")
	}
	if zs.order[len(zs.order)-1] != key(zipDirsKept) || zs.order[len(zs.order)-2] != key(0) {
		t.Errorf("order %v", zs.order)
	}
}

// TestDuplicateMemberNames: members whose names are (or clean to) one
// name are shown once, the first in the archive; the others are reported
// in errors.txt and the log, and a CSV join uses only the first.
func TestDuplicateMemberNames(t *testing.T) {
	dir := t.TempDir()
	python(t, dir, `import zipfile, tarfile, io, warnings
warnings.simplefilter("ignore")
with zipfile.ZipFile("dup.zip", "w") as z:
    z.writestr("a//b.csv", "k,v\nab1,1\n")
    z.writestr("p.csv", "k,v\np1,1\n")
    z.writestr("a/b.csv", "k,v\nab2,2\n")
    z.writestr("p.csv", "k,v\np2,2\n")
with tarfile.open("dup.tar", "w") as t:
    for body in (b"k,v\nfirst,1\n", b"k,v\nsecond,2\n"):
        ti = tarfile.TarInfo("dup.csv")
        ti.size = len(body)
        t.addfile(ti, io.BytesIO(body))
`)
	writeFile(t, filepath.Join(dir, "cat.yaml"), `sources:
  zcsv: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/dup.zip'}}
  zpq: {driver: parquet, args: {urlpath: '{{ CATALOG_DIR }}/dup.zip'}}
  tcsv: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/dup.tar'}}
  tpq: {driver: parquet, args: {urlpath: '{{ CATALOG_DIR }}/dup.tar'}}
`)
	f, logs := newLoggedFS(t, dir, "cat.yaml")
	if got := joinLines(names(t, f, "zpq.parquet")); got != "a%2Fb.csv\np.csv" {
		t.Errorf("zpq.parquet lists %q", got)
	}
	if got := joinLines(names(t, f, "tpq.parquet")); got != "dup.csv" {
		t.Errorf("tpq.parquet lists %q", got)
	}
	for p, want := range map[string]string{
		"zpq.parquet/a%2Fb.csv": "k,v\nab1,1\n",
		"zpq.parquet/p.csv":     "k,v\np1,1\n",
		"tpq.parquet/dup.csv":   "k,v\nfirst,1\n",
		"zcsv.csv":              "k,v\nab1,1\np1,1\n",
		"tcsv.csv":              "k,v\nfirst,1\n",
	} {
		if got := mustRead(t, f, p); got != want {
			t.Errorf("%s reads %q, want %q", p, got, want)
		}
	}
	errs := mustRead(t, f, ".catalog/errors.txt")
	for _, want := range []string{`source "zpq"`, `source "zcsv"`, `source "tpq"`, `member "p.csv"`, `member "a/b.csv"`, `member "dup.csv"`} {
		if !strings.Contains(errs, want) {
			t.Errorf("errors.txt lacks %s:\n%s", want, errs)
		}
	}
	if n := strings.Count(logs.String(), "name of an earlier member"); n < 3 {
		t.Errorf("%d log lines about names taken, want 3:\n%s", n, logs.String())
	}
}

// TestStoredZipMemberCRC: a stored zip member (read in place) whose bytes
// do not match its CRC-32 fails the read that reaches its end, with an
// error matching decomp.ErrCorrupt logged with the source and offset;
// reads before the end, and the other members, work.
func TestStoredZipMemberCRC(t *testing.T) {
	dir := t.TempDir()
	data := csvRows(40, 200<<10)
	good := csvRows(41, 20<<10)
	writeBytes(t, filepath.Join(dir, "x.csv"), data)
	writeBytes(t, filepath.Join(dir, "ok.csv"), good)
	python(t, dir, `import zipfile
with zipfile.ZipFile("s.zip", "w", compression=zipfile.ZIP_STORED) as z:
    z.write("x.csv")
    z.write("ok.csv")
`)
	z, err := os.ReadFile(filepath.Join(dir, "s.zip"))
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(z, data)
	if at < 0 {
		t.Fatal("the member is not stored as it is")
	}
	mid := len(data) / 2
	for data[mid] < '0' || data[mid] > '8' {
		mid++
	}
	z[at+mid]++ // another digit: the CSV stays valid, its CRC-32 does not
	writeBytes(t, filepath.Join(dir, "bad.zip"), z)
	writeFile(t, filepath.Join(dir, "cat.yaml"), `sources:
  one: {driver: csv, args: {urlpath: 'zip://x.csv::{{ CATALOG_DIR }}/bad.zip'}}
  okm: {driver: csv, args: {urlpath: 'zip://ok.csv::{{ CATALOG_DIR }}/bad.zip'}}
  parts: {driver: parquet, args: {urlpath: '{{ CATALOG_DIR }}/bad.zip'}}
  join: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/bad.zip'}}
`)
	f, logs := newLoggedFS(t, dir, "cat.yaml")
	for _, p := range []string{"one.csv", "parts.parquet/x.csv", "join.csv", "one.csv"} {
		got, err := readPath(t, f, p)
		if !errors.Is(err, decomp.ErrCorrupt) {
			t.Errorf("%s: error %v, want corrupt data", p, err)
		}
		if p != "join.csv" && !bytes.HasPrefix(data, []byte(got)[:min(len(got), mid)]) {
			t.Errorf("%s: the bytes before the end are not the member's", p)
		}
	}
	// a read short of the end is not checked
	h := openNode(t, f, "one.csv")
	buf := make([]byte, 1000)
	if n, err := h.ReadAt(context.Background(), buf, 0); err != nil || !bytes.Equal(buf[:n], data[:1000]) {
		t.Errorf("a read before the end: %d bytes, %v", n, err)
	}
	h.Close()
	if got := mustRead(t, f, "okm.csv"); got != string(good) {
		t.Error("the good member does not read back")
	}
	if got := mustRead(t, f, "parts.parquet/ok.csv"); got != string(good) {
		t.Error("the good member does not read back as a part")
	}
	found := false
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "corrupt") && strings.Contains(l, "bad.zip") && strings.Contains(l, "CRC-32") &&
			strings.Contains(l, fmt.Sprintf("offset=%d", len(data))) {
			found = true
		}
	}
	if !found {
		t.Errorf("no log line naming the source, the offset and the CRC-32:\n%s", logs.String())
	}
}

// TestTruncatedTar: a tar cut short (plain, or gzipped and cut in half)
// serves the members before the damage; the damaged one gives its good
// bytes, then an error matching decomp.ErrCorrupt; the members after the
// cut are missing; errors.txt and the log say where the archive is cut.
func TestTruncatedTar(t *testing.T) {
	needTool(t, "tar")
	needTool(t, "gzip")
	dir := t.TempDir()
	var parts [][]byte
	for i := 0; i < 4; i++ {
		b := csvRows(uint64(50+i), 200<<10)
		parts = append(parts, b)
		writeBytes(t, filepath.Join(dir, fmt.Sprintf("src/p%d.csv", i)), b)
	}
	sh(t, dir+"/src", "tar cf ../ok.tar p0.csv p1.csv p2.csv p3.csv && gzip -k -c ../ok.tar > ../ok.tar.gz")
	tb, _ := os.ReadFile(filepath.Join(dir, "ok.tar"))
	start := bytes.Index(tb, parts[2])
	cut := start + 100000
	writeBytes(t, filepath.Join(dir, "cut.tar"), tb[:cut])
	gz, _ := os.ReadFile(filepath.Join(dir, "ok.tar.gz"))
	writeBytes(t, filepath.Join(dir, "cut.tar.gz"), gz[:len(gz)/2])
	writeFile(t, filepath.Join(dir, "cat.yaml"), `sources:
  plain: {driver: parquet, args: {urlpath: '{{ CATALOG_DIR }}/cut.tar'}}
  gz: {driver: parquet, args: {urlpath: '{{ CATALOG_DIR }}/cut.tar.gz'}}
  join: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/cut.tar'}}
`)
	f, logs := newLoggedFS(t, dir, "cat.yaml")
	if got := joinLines(names(t, f, "plain.parquet")); got != "p0.csv\np1.csv\np2.csv" {
		t.Fatalf("plain.parquet lists %q", got)
	}
	for i := 0; i < 2; i++ {
		if got := readNode(t, f, fmt.Sprintf("plain.parquet/p%d.csv", i)); !bytes.Equal(got, parts[i]) {
			t.Errorf("p%d before the cut: %d bytes, want %d", i, len(got), len(parts[i]))
		}
	}
	got, err := readPath(t, f, "plain.parquet/p2.csv")
	if !errors.Is(err, decomp.ErrCorrupt) || got != string(parts[2][:100000]) {
		t.Errorf("the member cut: %d bytes, %v; want its 100000 good bytes, then corrupt data", len(got), err)
	}
	got, err = readPath(t, f, "join.csv")
	if want := joinCSV(parts[:3]); !errors.Is(err, decomp.ErrCorrupt) || len(got) == 0 || !bytes.HasPrefix(want, []byte(got)) {
		t.Errorf("join over the cut tar: %d bytes, %v", len(got), err)
	}

	gzNames := names(t, f, "gz.parquet")
	if len(gzNames) == 0 || len(gzNames) == 4 {
		t.Fatalf("gz.parquet lists %v", gzNames)
	}
	for i, name := range gzNames {
		if name != fmt.Sprintf("p%d.csv", i) {
			t.Fatalf("gz.parquet lists %v", gzNames)
		}
		got, err := readPath(t, f, "gz.parquet/"+name)
		switch {
		case i < len(gzNames)-1 && (err != nil || got != string(parts[i])):
			t.Errorf("%s before the damage: %d bytes, %v", name, len(got), err)
		case i == len(gzNames)-1 && (!errors.Is(err, decomp.ErrCorrupt) || !bytes.HasPrefix(parts[i], []byte(got))):
			t.Errorf("%s at the damage: %d bytes, %v; want good bytes, then corrupt data", name, len(got), err)
		}
	}
	errs := mustRead(t, f, ".catalog/errors.txt")
	if !strings.Contains(errs, fmt.Sprintf("truncated at offset %d", cut)) || !strings.Contains(errs, `source "plain"`) {
		t.Errorf("errors.txt does not say where cut.tar is cut (%d):\n%s", cut, errs)
	}
	if !strings.Contains(errs, `source "gz"`) || !strings.Contains(errs, "cut.tar.gz: the archive is truncated at offset") {
		t.Errorf("errors.txt does not say cut.tar.gz is truncated:\n%s", errs)
	}
	if !strings.Contains(logs.String(), "archive truncated") || !strings.Contains(logs.String(), fmt.Sprintf("offset=%d", cut)) {
		t.Errorf("no log line for the cut:\n%s", logs.String())
	}
}
