package decomp

import (
	"errors"
	"testing"
)

var (
	gzHead  = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3}
	bzHead  = []byte("BZh91AY&SY")
	xzHead  = []byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 4}
	zstHead = []byte{0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x00}
	lz4Head = []byte{0x04, 0x22, 0x4d, 0x18, 0x64, 0x40}
	zipHead = []byte("PK\x03\x04\x14\x00")
	// A legacy .lzma header: lc=3 lp=0 pb=2, 8 MiB dictionary, size unknown.
	lzmaHead = []byte{0x5d, 0, 0, 0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0}
	csvHead  = []byte("a,b,c\n1,2,3\n")
)

func TestDetect(t *testing.T) {
	gz := Format{Compression: Gzip}
	for _, c := range []struct {
		name string
		head []byte
		arg  string
		want Format
		err  bool
	}{
		// infer: by name, as fsspec.
		{"x.csv.gz", gzHead, "infer", gz, false},
		{"X.CSV.GZ", gzHead, "infer", gz, false},
		{"x.csv.bz2", bzHead, "infer", Format{Compression: Bzip2}, false},
		{"x.csv.xz", xzHead, "infer", Format{Compression: XZ}, false},
		{"x.csv.zst", zstHead, "infer", Format{Compression: Zstd}, false},
		{"x.csv.zstd", zstHead, "infer", Format{Compression: Zstd}, false},
		{"x.csv.lz4", lz4Head, "infer", Format{Compression: LZ4}, false},
		{"x.csv.lzma", lzmaHead, "infer", Format{Compression: LZMA}, false},
		{"x.zip", zipHead, "infer", Format{Archive: Zip}, false},
		{"x.tar.gz", gzHead, "infer", Format{Archive: Tar, Compression: Gzip}, false},
		{"x.tgz", gzHead, "infer", Format{Archive: Tar, Compression: Gzip}, false},
		{"x.tbz2", bzHead, "infer", Format{Archive: Tar, Compression: Bzip2}, false},
		{"x.txz", xzHead, "infer", Format{Archive: Tar, Compression: XZ}, false},
		{"x.tar.zst", zstHead, "infer", Format{Archive: Tar, Compression: Zstd}, false},
		{"x.tar", nil, "infer", Format{Archive: Tar}, false},
		{"x.csv", gzHead, "infer", Format{}, false},                       // infer looks at names only
		{"x.csv.gz", csvHead, "infer", Format{}, true},                    // misnamed: Intake fails too
		{"s3://b/k/x.csv.gz", gzHead, "infer", gz, false},                 // URLs
		{"dir.gz/x.csv", csvHead, "infer", Format{}, false},               // only the last element counts
		{".gz", csvHead, "infer", Format{}, false},                        // a hidden file, no extension
		{"x.csv.gz", nil, "infer", gz, false},                             // no head: not checked
		{"x.csv.gz", gzHead[:1], "infer", gz, false},                      // a short head that agrees
		{"x.csv.xz", lzmaHead, "infer", Format{Compression: LZMA}, false}, // LZMAFile reads both
		// auto: by name, else by magic; a misnamed file is read as what it is.
		{"x.csv", gzHead, "", gz, false},
		{"x", zstHead, "auto", Format{Compression: Zstd}, false},
		{"x.csv.gz", zstHead, "", Format{Compression: Zstd}, false},
		{"x.tar.gz", zstHead, "", Format{Archive: Tar, Compression: Zstd}, false},
		// auto: a compression suffix over bytes with no magic is decoded as
		// the suffix says (and fails there), never served raw.
		{"x.csv.gz", csvHead, "", gz, false},
		{"x.csv.gz", append([]byte{0x1e}, gzHead[1:]...), "", gz, false},
		{"x.csv.zst", append([]byte{0x29}, zstHead[1:]...), "", Format{Compression: Zstd}, false},
		{"x.csv.bz2", []byte("BZi91AY&SY"), "", Format{Compression: Bzip2}, false},
		{"x.csv.lz4", csvHead, "", Format{Compression: LZ4}, false},
		{"x.csv.xz", csvHead, "", Format{Compression: XZ}, false},
		{"x.tgz", csvHead, "auto", Format{Archive: Tar, Compression: Gzip}, false},
		{"x.csv.xz", lzmaHead, "", Format{Compression: LZMA}, false}, // xz -dc reads both
		{"x.csv.lzma", xzHead, "", Format{Compression: XZ}, false},
		{"x.csv.gz", nil, "", gz, false},
		{"x.zip", csvHead, "", Format{}, false},
		{"x.dat", zipHead, "", Format{Archive: Zip}, false},
		{"x.dat", lzmaHead, "", Format{}, false}, // no reliable magic
		// explicit.
		{"x.csv", gzHead, "gzip", gz, false},
		{"x.csv", csvHead, "gzip", Format{}, true},
		{"x.tar.gz", gzHead, "gzip", Format{Archive: Tar, Compression: Gzip}, false},
		{"x.csv", lzmaHead, "lzma", Format{Compression: LZMA}, false},
		{"x.csv", xzHead, "lzma", Format{Compression: XZ}, false},
		{"x.csv.gz", gzHead, "None", Format{}, false},
		{"x.csv.gz", gzHead, "none", Format{}, false},
		{"x.csv", zipHead, "zip", Format{Archive: Zip}, false},
		{"x.csv", nil, "brotli", Format{}, true},
		{"x.csv", nil, "snappy", Format{}, true},
	} {
		got, err := Detect(c.name, c.head, c.arg)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("Detect(%q, % x, %q) = %v, %v; want %v, err=%v", c.name, c.head, c.arg, got, err, c.want, c.err)
		}
		if err != nil && c.arg != "brotli" && c.arg != "snappy" && !errors.Is(err, ErrCorrupt) {
			t.Errorf("Detect(%q, %q): error %v does not match ErrCorrupt", c.name, c.arg, err)
		}
	}
	if _, err := Detect("x", nil, "snappy"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("snappy: %v", err)
	}
	if _, err := Detect("x", nil, "brotli"); err == nil || err.Error() != "Compression type brotli not supported" {
		t.Errorf("brotli: %v (want fsspec's wording)", err)
	}
}

func TestStripSuffix(t *testing.T) {
	for in, want := range map[string]struct {
		s string
		c Compression
	}{
		"data.csv.gz":    {"data.csv", Gzip},
		"data.CSV.GZ":    {"data.CSV", Gzip},
		"data.json.zst":  {"data.json", Zstd},
		"data.json.zstd": {"data.json", Zstd},
		"x.txt.bz2":      {"x.txt", Bzip2},
		"x.txt.xz":       {"x.txt", XZ},
		"x.txt.lz4":      {"x.txt", LZ4},
		"x.txt.lzma":     {"x.txt", LZMA},
		"a.tar.gz":       {"a.tar", Gzip},
		"a.tgz":          {"a.tar", Gzip},
		"a.txz":          {"a.tar", XZ},
		"a.tar":          {"a.tar", None},
		"a.zip":          {"a.zip", None},
		"data.csv":       {"data.csv", None},
		"data":           {"data", None},
		".gz":            {".gz", None},
		"dir/x.gz":       {"dir/x", Gzip},
	} {
		s, c := StripSuffix(in)
		if s != want.s || c != want.c {
			t.Errorf("StripSuffix(%q) = %q, %v; want %q, %v", in, s, c, want.s, want.c)
		}
	}
}

func TestIntakeDecomp(t *testing.T) {
	for _, c := range []struct {
		name, decomp string
		want         Format
		err          bool
	}{
		{"x.zip", "infer", Format{Archive: Zip}, false},
		{"x.tar.gz", "", Format{Archive: Tar, Compression: Gzip}, false},
		{"x.tgz", "infer", Format{Archive: Tar, Compression: Gzip}, false},
		{"x.tar.bz2", "infer", Format{Archive: Tar, Compression: Bzip2}, false},
		{"x.tbz", "infer", Format{Archive: Tar, Compression: Bzip2}, false},
		{"x.tar", "infer", Format{Archive: Tar}, false},
		{"x.csv.gz", "infer", Format{Compression: Gzip}, false},
		{"x.csv.bz2", "infer", Format{Compression: Bzip2}, false},
		{"x.csv", "infer", Format{}, true},
		{"x.bin", "tgz", Format{Archive: Tar, Compression: Gzip}, false},
		{"x.bin", "bz", Format{Compression: Bzip2}, false},
		{"x.bin", "gz", Format{Compression: Gzip}, false},
		{"x.bin", "rar", Format{}, true},
	} {
		got, err := IntakeDecomp(c.name, c.decomp)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("IntakeDecomp(%q, %q) = %v, %v; want %v", c.name, c.decomp, got, err, c.want)
		}
	}
}

func TestFormatString(t *testing.T) {
	for f, want := range map[Format]string{
		{}:                                "none",
		{Compression: Gzip}:               "gzip",
		{Compression: Bzip2}:              "bz2",
		{Archive: Tar}:                    "tar",
		{Archive: Tar, Compression: Zstd}: "tar+zstd",
		{Archive: Zip}:                    "zip",
	} {
		if f.String() != want {
			t.Errorf("%#v.String() = %q, want %q", f, f.String(), want)
		}
	}
}
