package decomp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Compression is a stream compression format.
type Compression uint8

const (
	None  Compression = iota // no compression: the bytes are the data
	Gzip                     // RFC 1952, any number of members
	Bzip2                    // bzip2, any number of concatenated streams
	XZ                       // .xz, any number of streams and stream padding
	LZMA                     // legacy .lzma ("LZMA alone"), one stream
	Zstd                     // Zstandard, any number of frames (skippable frames skipped)
	LZ4                      // LZ4 frame format (and the legacy frame), any number of frames
)

// String is the compression's name as fsspec's `compr` table spells it
// ("gzip", "bz2", "xz", "lzma", "zstd", "lz4"), and "none" for None.
func (c Compression) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Bzip2:
		return "bz2"
	case XZ:
		return "xz"
	case LZMA:
		return "lzma"
	case Zstd:
		return "zstd"
	case LZ4:
		return "lz4"
	case rawDeflate:
		return "deflate"
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

// Archive is a container format holding several members.
type Archive uint8

const (
	NoArchive Archive = iota
	Tar               // tar (ustar, pax, GNU), optionally inside a Compression
	Zip               // zip; never inside a Compression (it needs random access)
)

func (a Archive) String() string {
	switch a {
	case NoArchive:
		return ""
	case Tar:
		return "tar"
	case Zip:
		return "zip"
	}
	return fmt.Sprintf("archive(%d)", uint8(a))
}

// Format is what a file is: an optional archive inside an optional
// compression. The zero Format is plain data.
type Format struct {
	Archive     Archive
	Compression Compression
}

// String is "none", "gzip", "tar", "tar+gzip", "zip", ...
func (f Format) String() string {
	switch {
	case f.Archive == NoArchive:
		return f.Compression.String()
	case f.Compression == None:
		return f.Archive.String()
	}
	return f.Archive.String() + "+" + f.Compression.String()
}

// IsPlain reports whether the bytes are the data: no compression, no archive.
func (f Format) IsPlain() bool { return f == Format{} }

// ErrUnsupported is a compression or archive feature this package does not
// decode (snappy, zip's deflate64 or encryption, ...).
var ErrUnsupported = errors.New("unsupported compression")

// suffixes maps a lower-cased final extension to a format. fsspec's infer
// table (fsspec.utils.compressions, 2022.11) is {gz, bz2, xz, lz4, zst,
// zip}; the rest are the usual spellings of the same formats, which fsspec
// leaves uncompressed.
var suffixes = map[string]Format{
	".gz":   {Compression: Gzip},
	".bz2":  {Compression: Bzip2},
	".xz":   {Compression: XZ},
	".lzma": {Compression: LZMA},
	".zst":  {Compression: Zstd},
	".zstd": {Compression: Zstd},
	".lz4":  {Compression: LZ4},
	".tar":  {Archive: Tar},
	".tgz":  {Archive: Tar, Compression: Gzip},
	".taz":  {Archive: Tar, Compression: Gzip},
	".tbz":  {Archive: Tar, Compression: Bzip2},
	".tbz2": {Archive: Tar, Compression: Bzip2},
	".tb2":  {Archive: Tar, Compression: Bzip2},
	".txz":  {Archive: Tar, Compression: XZ},
	".tlz":  {Archive: Tar, Compression: LZMA},
	".tzst": {Archive: Tar, Compression: Zstd},
	".zip":  {Archive: Zip},
}

// ext is name's final extension, lower-cased, with its dot ("" when none).
// A leading dot alone (".gz") is a hidden file's name, not an extension.
func ext(name string) string {
	if i := strings.LastIndexAny(name, "/\\"); i >= 0 {
		name = name[i+1:]
	}
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return ""
	}
	return strings.ToLower(name[i:])
}

// ByName is the format a file name says, looking at its last extension
// (and, under a compression suffix, for ".tar": "x.tar.gz" is tar+gzip).
func ByName(name string) Format {
	f, ok := suffixes[ext(name)]
	if !ok {
		return Format{}
	}
	if f.Archive == NoArchive && f.Compression != None {
		if base := name[:len(name)-len(ext(name))]; ext(base) == ".tar" {
			f.Archive = Tar
		}
	}
	return f
}

// StripSuffix removes a compression suffix from name, giving the name of
// the data as a reader sees it (SPEC §2): "x.csv.gz" → "x.csv",
// "x.tar.zst" → "x.tar", "x.tgz" → "x.tar". Suffixes are matched without
// regard to case. The compression removed is returned; None (and name
// unchanged) when there is none, or when nothing would be left of the name.
func StripSuffix(name string) (string, Compression) {
	e := ext(name)
	f, ok := suffixes[e]
	if !ok || f.Compression == None {
		return name, None
	}
	base := name[:len(name)-len(e)]
	if f.Archive == Tar { // .tgz and friends
		return base + ".tar", f.Compression
	}
	return base, f.Compression
}

// Detect decides how to read a file from its name, its first bytes and the
// `compression` argument of the source (as Intake's csv, textfiles and json
// drivers take it; fsspec's names):
//
//	"infer"                     by name only, as fsspec's infer_compression (a superset of its table)
//	"" or "auto"                by name, else by magic bytes (intakefs's choice when a source says nothing)
//	"None", "none", "null"      no decompression: the bytes are the data
//	"gzip" "bz2" "xz" "lzma" "zstd" "lz4"   that compression, whatever the name says
//	"zip"                       a zip archive (fsspec reads its first member)
//
// "lzma" reads .xz as well as legacy .lzma (Python's LZMAFile decodes
// both), and so does "xz"; the magic decides which. Under an explicit
// compression the name still says whether the data is a tar
// ("x.tar.gz" with compression "gzip" is tar+gzip).
//
// head is the file's first bytes (up to 512 are looked at; fewer is fine,
// and an empty head is not checked). When the argument ("infer" or a
// compression) names a compression and head is present but is not in
// it, Detect fails with an error matching ErrCorrupt (Intake would fail
// too, with BadGzipFile and the like).
//
// In "auto" mode a suffix that names a compression is trusted as fsspec's
// infer trusts it, with two exceptions: bytes that carry another format's
// magic are read as that format (a misnamed file), and an ".xz" (or
// ".lzma") whose bytes are the other container is read as that one (xz
// -dc and LZMAFile read both). Bytes that carry no magic at all are NOT
// taken for plain data: the format the suffix names is returned, and
// decoding fails at offset 0 with a *CorruptError (NewReader checks the
// magic), so that a damaged "x.csv.gz" can never be served as its
// compressed bytes. Only a name without a compression suffix is read as
// plain when its bytes say nothing. An argument naming no supported
// compression fails with fsspec's wording; "snappy" fails with
// ErrUnsupported.
func Detect(name string, head []byte, arg string) (Format, error) {
	var f Format
	switch arg {
	case "infer":
		f = ByName(name)
	case "", "auto":
		return detectAuto(name, head), nil
	case "None", "none", "null":
		return Format{}, nil
	case "zip":
		f = Format{Archive: Zip}
	case "snappy":
		return Format{}, fmt.Errorf("compression %q: %w", arg, ErrUnsupported)
	default:
		c, ok := ParseCompression(arg)
		if !ok {
			return Format{}, fmt.Errorf("Compression type %s not supported", arg)
		}
		f = Format{Compression: c}
		if nf := ByName(name); nf.Archive == Tar {
			f.Archive = Tar
		}
	}
	f.Compression = xzOrLZMA(f.Compression, head)
	if len(head) > 0 && !matches(f, head) {
		return Format{}, &CorruptError{Format: f.Compression, Offset: 0, InputOffset: 0,
			Err: fmt.Errorf("%s: not %s data (starts % x)", name, f, head[:min(len(head), 8)])}
	}
	return f, nil
}

// detectAuto is Detect's "auto" mode.
func detectAuto(name string, head []byte) Format {
	f := ByName(name)
	if len(head) == 0 {
		return f
	}
	f.Compression = xzOrLZMA(f.Compression, head)
	if !f.IsPlain() && matches(f, head) {
		return f
	}
	if m := ByMagic(head); !m.IsPlain() {
		// No suffix, or a misnamed file: its bytes say what it is. A
		// short head says nothing of a tar inside; the name still does.
		if f.Archive == Tar && m.Archive == NoArchive {
			m.Archive = Tar
		}
		return m
	}
	if f.Compression != None {
		// The suffix names a compression the bytes are not in: decoding
		// as it says fails (as fsspec's infer does), rather than serving
		// the compressed bytes as the data.
		return f
	}
	return Format{} // a ".zip" that is no zip: its bytes as they are
}

// xzOrLZMA is c, but for XZ and LZMA the container the head holds: either
// spelling decodes both, as xz -dc and Python's LZMAFile do.
func xzOrLZMA(c Compression, head []byte) Compression {
	if c != XZ && c != LZMA {
		return c
	}
	switch {
	case bytes.HasPrefix(head, xzMagic):
		return XZ
	case len(head) >= 13 && isLZMAAlone(head):
		return LZMA
	}
	return c
}

// ParseCompression maps a compression name (fsspec's spellings, plus a few
// aliases: "gz", "bzip2", "zst", "none") to a Compression.
func ParseCompression(s string) (Compression, bool) {
	switch s {
	case "gzip", "gz":
		return Gzip, true
	case "bz2", "bzip2":
		return Bzip2, true
	case "xz":
		return XZ, true
	case "lzma":
		return LZMA, true
	case "zstd", "zst":
		return Zstd, true
	case "lz4":
		return LZ4, true
	case "None", "none", "null", "":
		return None, true
	}
	return None, false
}

var (
	gzipMagic   = []byte{0x1f, 0x8b}
	bzip2Magic  = []byte("BZh")
	xzMagic     = []byte{0xfd, '7', 'z', 'X', 'Z', 0}
	zstdMagic   = []byte{0x28, 0xb5, 0x2f, 0xfd}
	lz4Magic    = []byte{0x04, 0x22, 0x4d, 0x18}
	lz4Legacy   = []byte{0x02, 0x21, 0x4c, 0x18}
	zipMagic    = []byte("PK\x03\x04")
	zipEmpty    = []byte("PK\x05\x06")
	ustarMagic  = []byte("ustar")
	skipMagicLo = uint32(0x184D2A50)
)

// hasPrefix is bytes.HasPrefix that accepts a head shorter than the magic
// when what there is agrees (a truncated file is the decoder's to report).
func hasPrefix(head, magic []byte) bool {
	n := min(len(head), len(magic))
	return bytes.Equal(head[:n], magic[:n])
}

// isSkippable reports a zstd/lz4 skippable frame magic at the head.
func isSkippable(head []byte) bool {
	return len(head) >= 4 && binary.LittleEndian.Uint32(head)&0xFFFFFFF0 == skipMagicLo
}

// matches reports whether head is consistent with f's outer layer.
func matches(f Format, head []byte) bool {
	switch f.Compression {
	case Gzip:
		return hasPrefix(head, gzipMagic)
	case Bzip2:
		return hasPrefix(head, bzip2Magic) && (len(head) < 4 || head[3] >= '1' && head[3] <= '9')
	case XZ:
		return hasPrefix(head, xzMagic)
	case LZMA:
		return len(head) < 13 || isLZMAAlone(head)
	case Zstd:
		return hasPrefix(head, zstdMagic) || isSkippable(head)
	case LZ4:
		return hasPrefix(head, lz4Magic) || hasPrefix(head, lz4Legacy) || isSkippable(head)
	}
	switch f.Archive {
	case Zip:
		return hasPrefix(head, zipMagic) || hasPrefix(head, zipEmpty)
	}
	return true
}

// isLZMAAlone checks the 13-byte header of a legacy .lzma file: a valid
// properties byte (lc+lp*9+pb*45 with pb<=4) and a dictionary size that
// liblzma accepts.
func isLZMAAlone(h []byte) bool {
	if len(h) < 13 || h[0] > 4*45+4*9+8 {
		return false
	}
	d := binary.LittleEndian.Uint32(h[1:5])
	// liblzma's alone decoder accepts 2^n and 2^n+2^(n-1) dictionary
	// sizes, and UINT32_MAX; xz writes powers of two.
	if d != 0xFFFFFFFF {
		if d == 0 {
			return false
		}
		x := d
		for x&1 == 0 {
			x >>= 1
		}
		if x != 1 && x != 3 {
			return false
		}
	}
	size := binary.LittleEndian.Uint64(h[5:13])
	return size == ^uint64(0) || size < 1<<38
}

// ByMagic is the format the first bytes say. Tar is recognised by its
// ustar magic in an uncompressed head, and inside a compression when head
// holds enough of the compressed stream to decode its first 512 bytes
// (a few kB do for gzip; xz, zstd, bzip2 and lz4 decode in blocks of
// 64 kB to 4 MB, so a short head says nothing about them).
// Legacy .lzma has no reliable magic and is only detected by name or
// argument.
func ByMagic(head []byte) Format {
	var c Compression
	switch {
	case bytes.HasPrefix(head, gzipMagic) && len(head) >= 3 && head[2] == 8:
		c = Gzip
	case bytes.HasPrefix(head, bzip2Magic) && len(head) >= 4 && head[3] >= '1' && head[3] <= '9':
		c = Bzip2
	case bytes.HasPrefix(head, xzMagic):
		c = XZ
	case bytes.HasPrefix(head, zstdMagic):
		c = Zstd
	case bytes.HasPrefix(head, lz4Magic), bytes.HasPrefix(head, lz4Legacy):
		c = LZ4
	case isSkippable(head):
		// Skippable frames are shared by zstd and lz4: look past them.
		h := head
		for isSkippable(h) && len(h) >= 8 {
			n := int(binary.LittleEndian.Uint32(h[4:8]))
			if n > len(h)-8 {
				return Format{Compression: Zstd}
			}
			h = h[8+n:]
		}
		if f := ByMagic(h); f.Compression == LZ4 {
			return f
		}
		c = Zstd
	case bytes.HasPrefix(head, zipMagic), bytes.HasPrefix(head, zipEmpty):
		return Format{Archive: Zip}
	case IsTarHeader(head):
		return Format{Archive: Tar}
	default:
		return Format{}
	}
	f := Format{Compression: c}
	if sniffTar(c, head) {
		f.Archive = Tar
	}
	return f
}

// IsTarHeader reports whether b starts with a tar header block: the ustar
// magic at offset 257 (POSIX "ustar\0" or GNU "ustar  ") and a header
// checksum that adds up.
func IsTarHeader(b []byte) bool {
	if len(b) < 512 || !bytes.Equal(b[257:262], ustarMagic) {
		return false
	}
	var sum int64
	for i := 0; i < 512; i++ {
		if i >= 148 && i < 156 {
			sum += ' '
		} else {
			sum += int64(b[i])
		}
	}
	field := strings.Trim(string(b[148:156]), " \x00")
	var v int64
	for _, ch := range field {
		if ch < '0' || ch > '7' {
			return false
		}
		v = v*8 + int64(ch-'0')
	}
	return field != "" && v == sum
}

// IntakeDecomp is the archive/compression Intake 0.6.6's `cache:` block of
// type `compressed` applies to a downloaded file, from its `decomp` value:
// one of Intake's keys ("zip", "tgz", "tbz", "tar", "gz", "bz") or "infer"
// (or absent: ""), which looks at the name's end as Intake does (.zip,
// .tar.gz / .tgz, .tar.bz2 / .tbz, .tar, .gz, .bz2). Deliberate
// differences: suffixes are matched without regard to case, and beyond
// Intake's list "infer" also takes every suffix ByName knows (.xz, .zst,
// .tar.xz, ...). Intake names the file extracted from a .gz/.bz2 by
// cutting three characters (so "x.csv.bz2" becomes "x.csv."): use
// StripSuffix for the name instead.
func IntakeDecomp(name, decomp string) (Format, error) {
	switch decomp {
	case "zip":
		return Format{Archive: Zip}, nil
	case "tgz":
		return Format{Archive: Tar, Compression: Gzip}, nil
	case "tbz":
		return Format{Archive: Tar, Compression: Bzip2}, nil
	case "tar":
		return Format{Archive: Tar}, nil
	case "gz":
		return Format{Compression: Gzip}, nil
	case "bz":
		return Format{Compression: Bzip2}, nil
	case "", "infer":
		if f := ByName(name); !f.IsPlain() {
			return f, nil
		}
		return Format{}, fmt.Errorf("Unknown compression for %q", name)
	}
	return Format{}, fmt.Errorf("Unknown compression for %q (decomp: %s)", name, decomp)
}
