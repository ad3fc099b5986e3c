package decomp

import (
	"archive/tar"
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"path"
	"regexp"
	"strings"
	"time"
)

// MemberType is what kind of entry an archive member is.
type MemberType uint8

const (
	Regular MemberType = iota
	Dir
	Symlink
	Hardlink
	Other // devices, FIFOs, ...
)

func (t MemberType) String() string {
	return [...]string{"file", "dir", "symlink", "hardlink", "other"}[t]
}

// Member is one entry of a tar or zip archive.
type Member struct {
	// Name is the entry's name as the archive stores it ("./a.csv",
	// "dir/", ...); CleanName turns it into a safe relative path.
	Name     string
	Type     MemberType
	Size     int64 // the member's data size, exact (from the directory or header)
	Mode     fs.FileMode
	ModTime  time.Time
	Linkname string // symlinks and hardlinks
	// Offset is where the member's bytes start in the (decompressed)
	// archive, when they are stored there contiguously as they are (tar,
	// zip "stored"); -1 otherwise (zip deflate, tar sparse files), and for
	// zip before ReaderAt was asked.
	Offset int64
	// Method is a zip member's compression method (0 stored, 8 deflate,
	// 12 bzip2, 93 zstd, 95 xz); 0 for tar.
	Method uint16
	// CRC32 is a zip member's checksum (checked at the end of Open).
	CRC32 uint32
	index int
}

// CleanName is name as a relative slash path with no "." or ".."
// elements and no leading "/" ("./a//b.csv" → "a/b.csv"); ok is false
// for a name that would escape the archive's root ("../x") or is empty.
func CleanName(name string) (string, bool) {
	name = strings.ReplaceAll(name, "\\", "/")
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", false
		}
	}
	c := strings.TrimPrefix(path.Clean("/"+name), "/")
	return c, c != ""
}

// Filter selects members by name, as the `regex_filter` of an Intake
// cache block does (Python's re.search: the pattern may match anywhere).
type Filter struct{ re *regexp.Regexp }

// CompileFilter compiles a regex_filter. Go's RE2 syntax is Python's for
// everything a file-name filter uses (classes, anchors, groups, (?i),
// (?P<name>...)); `\Z` is taken as Python means it (end of text).
// Look-around and backreferences are refused with an error. An empty
// expression matches everything (Intake's default is '.*').
func CompileFilter(expr string) (*Filter, error) {
	expr = strings.ReplaceAll(expr, `\Z`, `\z`)
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("regex_filter %q: %w", expr, err)
	}
	return &Filter{re: re}, nil
}

// Match reports whether name passes the filter (a nil Filter passes all).
func (f *Filter) Match(name string) bool { return f == nil || f.re.MatchString(name) }

// FilterMembers keeps the regular files whose Name passes f, in order.
//
// Intake 0.6.6 matches regex_filter against the extracted file's full
// path under its cache directory (so '^' anchors at that directory) and
// keeps directories that match too; intakefs matches the member's name
// in the archive, and lists files only.
func FilterMembers(ms []Member, f *Filter) []Member {
	var out []Member
	for _, m := range ms {
		if m.Type == Regular && f.Match(m.Name) {
			out = append(out, m)
		}
	}
	return out
}

// ZipArchive is an open zip file. Its directory is read once, at open.
type ZipArchive struct {
	r       io.ReaderAt
	zr      *zip.Reader
	members []Member
}

// OpenZip reads the central directory of the zip of size bytes in r. A
// missing or damaged directory (a truncated file) is ErrCorrupt.
func OpenZip(r io.ReaderAt, size int64) (*ZipArchive, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		if errors.Is(err, zip.ErrFormat) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, zip.ErrAlgorithm) {
			return nil, &CorruptError{Format: None, Offset: -1, InputOffset: -1, Err: fmt.Errorf("zip: %w", err)}
		}
		if errors.Is(err, zip.ErrInsecurePath) {
			// Go reports names like "../x" this way but still reads the
			// directory; CleanName deals with those names.
		} else {
			return nil, err
		}
	}
	z := &ZipArchive{r: r, zr: zr}
	for i, f := range zr.File {
		m := Member{
			Name:    f.Name,
			Size:    int64(f.UncompressedSize64),
			Mode:    f.Mode(),
			ModTime: f.Modified,
			Offset:  -1,
			Method:  f.Method,
			CRC32:   f.CRC32,
			index:   i,
		}
		switch {
		case f.Mode().IsDir() || strings.HasSuffix(f.Name, "/"):
			m.Type = Dir
		case f.Mode()&fs.ModeSymlink != 0:
			m.Type = Symlink
		case f.Mode().IsRegular():
			m.Type = Regular
		default:
			m.Type = Other
		}
		if m.Size < 0 {
			return nil, &CorruptError{Offset: -1, InputOffset: -1, Err: fmt.Errorf("zip: member %q: size out of range", f.Name)}
		}
		z.members = append(z.members, m)
	}
	return z, nil
}

// Members lists the archive's entries in directory order.
func (z *ZipArchive) Members() []Member { return z.members }

func (z *ZipArchive) file(m Member) (*zip.File, error) {
	if m.index < 0 || m.index >= len(z.zr.File) || z.zr.File[m.index].Name != m.Name {
		return nil, fmt.Errorf("zip: no member %q", m.Name)
	}
	return z.zr.File[m.index], nil
}

// ReaderAt gives random access to a stored (uncompressed) member without
// any decompression; ok is false for a compressed member (read it through
// Open, and a Spool for random access). The member's CRC is not checked
// on this path.
func (z *ZipArchive) ReaderAt(m Member) (*io.SectionReader, bool, error) {
	f, err := z.file(m)
	if err != nil {
		return nil, false, err
	}
	if f.Method != zip.Store || f.Flags&1 != 0 {
		return nil, false, nil
	}
	off, err := f.DataOffset()
	if err != nil {
		return nil, false, z.corrupt(f, err)
	}
	if int64(f.CompressedSize64) != m.Size {
		return nil, false, z.corrupt(f, errors.New("stored member's sizes differ"))
	}
	return io.NewSectionReader(z.r, off, m.Size), true, nil
}

func (z *ZipArchive) corrupt(f *zip.File, err error) error {
	if errors.Is(err, ErrCorrupt) {
		return err
	}
	return &CorruptError{Offset: -1, InputOffset: -1, Err: fmt.Errorf("zip member %q: %w", f.Name, err)}
}

// zipMethods maps zip compression methods to the stream formats that
// decode them.
var zipMethods = map[uint16]Compression{
	zip.Store:   None,
	zip.Deflate: rawDeflate,
	12:          Bzip2,
	93:          Zstd,
	95:          XZ,
}

// Open streams a member's decompressed bytes; its CRC-32 and size are
// checked at the end (a mismatch is ErrCorrupt, as is damage on the way).
func (z *ZipArchive) Open(m Member) (io.ReadCloser, error) { return z.OpenIn(m, z.r) }

// OpenIn is Open reading the member's bytes from r, a reader of the same
// object as the archive's own (one whose reads a caller can cancel): an
// archive's directory, read once, serves the opens of all its members.
// The archive's reader is still used for the member's local header.
func (z *ZipArchive) OpenIn(m Member, r io.ReaderAt) (io.ReadCloser, error) {
	f, err := z.file(m)
	if err != nil {
		return nil, err
	}
	if f.Flags&1 != 0 {
		return nil, fmt.Errorf("zip member %q is encrypted: %w", f.Name, ErrUnsupported)
	}
	c, ok := zipMethods[f.Method]
	if !ok {
		return nil, fmt.Errorf("zip member %q: method %d: %w", f.Name, f.Method, ErrUnsupported)
	}
	off, err := f.DataOffset()
	if err != nil {
		return nil, z.corrupt(f, err)
	}
	if f.CompressedSize64 > math.MaxInt64-uint64(off) {
		return nil, z.corrupt(f, errors.New("compressed size out of range"))
	}
	src := io.NewSectionReader(r, off, int64(f.CompressedSize64))
	rd := NewReader(c, src).(*reader)
	return &zipMember{r: rd, h: crc32.NewIEEE(), want: f.CRC32, size: m.Size, name: f.Name}, nil
}

// Opener is Open in the form SpoolConfig.Open takes.
func (z *ZipArchive) Opener(m Member) func(ctx context.Context) (io.ReadCloser, error) {
	return func(context.Context) (io.ReadCloser, error) { return z.Open(m) }
}

// zipMember checks a zip member's size and CRC-32 as it is read.
type zipMember struct {
	r    *reader
	h    hash.Hash32
	want uint32
	size int64
	n    int64
	name string
	err  error
}

func (m *zipMember) Read(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	n, err := m.r.Read(p)
	if int64(n) > m.size-m.n {
		n = int(max(m.size-m.n, 0))
		err = m.fail(fmt.Errorf("member longer than its recorded size %d", m.size))
	}
	m.h.Write(p[:n])
	m.n += int64(n)
	if err == io.EOF {
		if m.n != m.size {
			err = m.fail(fmt.Errorf("member ended at %d, its recorded size is %d", m.n, m.size))
		} else if m.h.Sum32() != m.want {
			err = m.fail(fmt.Errorf("CRC-32 mismatch (%08x, recorded %08x)", m.h.Sum32(), m.want))
		}
	}
	if err != nil {
		m.err = err
	}
	return n, err
}

func (m *zipMember) fail(err error) error {
	return &CorruptError{Format: m.r.c, Offset: m.n, InputOffset: m.r.inOff(), Err: fmt.Errorf("zip member %q: %w", m.name, err)}
}

func (m *zipMember) Close() error { return m.r.Close() }

// TarArchive is the directory of a tar, found by reading it through.
type TarArchive struct {
	r       io.ReaderAt
	members []Member
}

// ScanTar lists the members of the uncompressed tar in r, of size bytes
// (-1: unknown, read to the end). r is the tar itself (a plain .tar) or a
// Spool of a compressed one: the scan reads every header, so for a
// compressed tar it decompresses the whole archive into the spool, where
// members are then read without decompressing again. The data of members
// is skipped without being read where r allows (a plain tar costs only
// its headers).
//
// A damaged or truncated archive returns the members found before the
// damage together with the error (matching ErrCorrupt when it is damage).
func ScanTar(ctx context.Context, r io.ReaderAt, size int64) (*TarArchive, error) {
	if size < 0 {
		size = math.MaxInt64
	}
	sr := io.NewSectionReader(r, 0, size)
	t := &TarArchive{r: r}
	err := listTar(ctx, &ctxReadSeeker{ctx: ctx, sr: sr}, func(m Member) { t.members = append(t.members, m) })
	return t, err
}

// ListTar lists the members of a tar read as a stream (for instance
// NewReader(Gzip, f)), with their sizes; Offset is where the member's data
// starts in the stream.
func ListTar(ctx context.Context, r io.Reader) ([]Member, error) {
	var out []Member
	err := listTar(ctx, &countingStream{r: r}, func(m Member) { out = append(out, m) })
	return out, err
}

type positioner interface {
	io.Reader
	pos() int64
}

type ctxReadSeeker struct {
	ctx context.Context
	sr  *io.SectionReader
}

func (c *ctxReadSeeker) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.sr.Read(p)
}
func (c *ctxReadSeeker) Seek(off int64, whence int) (int64, error) { return c.sr.Seek(off, whence) }
func (c *ctxReadSeeker) pos() int64 {
	p, _ := c.sr.Seek(0, io.SeekCurrent)
	return p
}

type countingStream struct {
	r io.Reader
	n int64
}

func (c *countingStream) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
func (c *countingStream) pos() int64 { return c.n }

func listTar(ctx context.Context, r positioner, add func(Member)) error {
	tr := tar.NewReader(r)
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if errors.Is(err, ErrCorrupt) || !isTarErr(err) {
				return err // damage found by a Spool, or the input's own I/O error
			}
			cause := err
			if errors.Is(err, io.ErrUnexpectedEOF) {
				cause = errTruncated
			}
			return &CorruptError{Format: None, Offset: r.pos(), InputOffset: -1, Err: fmt.Errorf("tar: %w", cause)}
		}
		m := Member{
			Name:     h.Name,
			Size:     h.Size,
			Mode:     h.FileInfo().Mode(),
			ModTime:  h.ModTime,
			Linkname: h.Linkname,
			Offset:   r.pos(),
			index:    i,
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA, tar.TypeCont:
			m.Type = Regular
		case tar.TypeGNUSparse:
			m.Type = Regular
			m.Offset = -1
		case tar.TypeDir:
			m.Type = Dir
		case tar.TypeSymlink:
			m.Type = Symlink
		case tar.TypeLink:
			m.Type = Hardlink
		default:
			m.Type = Other
		}
		if len(h.PAXRecords) > 0 {
			for k := range h.PAXRecords {
				if strings.HasPrefix(k, "GNU.sparse.") {
					m.Offset = -1
				}
			}
		}
		add(m)
	}
}

// isTarErr tells archive/tar's own errors (invalid or truncated headers)
// from the input's.
func isTarErr(err error) bool {
	return errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, tar.ErrFieldTooLong) || strings.HasPrefix(err.Error(), "archive/tar:")
}

// Members lists the archive's entries in order.
func (t *TarArchive) Members() []Member { return t.members }

// ReaderAt gives random access to a member's bytes, a section of the
// archive; ok is false for a sparse member (use Open).
func (t *TarArchive) ReaderAt(m Member) (*io.SectionReader, bool) {
	if m.Offset < 0 || m.Type != Regular {
		return nil, false
	}
	return io.NewSectionReader(t.r, m.Offset, m.Size), true
}

// Open streams a member's bytes.
func (t *TarArchive) Open(m Member) (io.ReadCloser, error) {
	if sr, ok := t.ReaderAt(m); ok {
		return io.NopCloser(sr), nil
	}
	// Sparse: read through the archive to it.
	tr := tar.NewReader(io.NewSectionReader(t.r, 0, math.MaxInt64))
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err != nil {
			if err == io.EOF {
				err = fmt.Errorf("tar: no member %q", m.Name)
			}
			return nil, err
		}
		if i == m.index && h.Name == m.Name {
			return io.NopCloser(tr), nil
		}
	}
}
