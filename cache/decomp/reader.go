package decomp

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// ErrCorrupt is matched (errors.Is) by every error that comes from damaged
// input: a truncated stream, a checksum mismatch, invalid data, trailing
// garbage. Errors of the underlying reader (I/O, a remote that is
// unavailable) are passed through instead and do not match it.
var ErrCorrupt = errors.New("corrupt compressed data")

// CorruptError is the error for damaged input. Bytes before Offset were
// delivered (the stream was consistent that far, though a checksum at the
// end of a gzip member or a frame may cover them too); nothing at or past
// Offset can be read.
type CorruptError struct {
	Format Compression
	// Offset is the decompressed offset at which reading failed.
	Offset int64
	// InputOffset is how far into the compressed input the decoder had
	// read (to within its buffering), -1 when not known.
	InputOffset int64
	Err         error
}

func (e *CorruptError) Error() string {
	in := ""
	if e.InputOffset >= 0 {
		in = fmt.Sprintf(", input offset ~%d", e.InputOffset)
	}
	return fmt.Sprintf("%s: corrupt data at decompressed offset %d%s: %v", e.Format, e.Offset, in, e.Err)
}

// Unwrap gives both ErrCorrupt and the decoder's own error.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// errTruncated is the cause of a CorruptError for input that ended early.
var errTruncated = errors.New("unexpected end of compressed input (truncated)")

// errTrailing is the cause for bytes after the end of the last stream that
// are not a stream.
var errTrailing = errors.New("trailing data after the end of the compressed stream")

// ioBufSize is how much of the compressed input is read at a time.
const ioBufSize = 1 << 20

// ZstdMaxWindow is the largest zstd window accepted, zstd's and python-
// zstandard's default limit (128 MiB): a frame asking for more (zstd
// --long=31) is refused rather than allowed to take gigabytes.
const ZstdMaxWindow = 1 << 27

// XZMaxDict bounds the LZMA dictionary an .xz or .lzma stream may ask
// for (xz -9 uses 64 MiB; 1.5 GiB is the format's maximum).
const XZMaxDict = 1 << 30

// zstdConcurrency is the number of blocks the zstd decoder keeps in
// flight. 1 decodes synchronously: on a 2-core machine that is also
// serving FUSE reads it measured fastest (BenchmarkDecompressZstd).
var zstdConcurrency = 1

// NewReader returns the decompressed stream of src, which holds data
// compressed as c (None: src itself, wrapped). It never fails at once: an
// error in the input shows at Read, as a *CorruptError (matching
// ErrCorrupt) with the offset, after all the bytes before the damage.
// Errors from src pass through, wrapped, without matching ErrCorrupt.
// An empty src reads as empty data for gzip (as Python's gzip module has
// it) and None, and as truncated for the other formats (as Python's bz2
// and lzma modules have it). Close releases the decoder (zstd's goroutines
// among others); it does not close src.
func NewReader(c Compression, src io.Reader) io.ReadCloser {
	cr := &countReader{r: src}
	size := ioBufSize
	if s, ok := src.(interface{ Size() int64 }); ok && s.Size() < int64(size) {
		// a zip member or a small file: a tar or zip of thousands of
		// small members opens a reader for each
		size = int(max(s.Size()+1, 4096))
	}
	r := &reader{c: c, src: cr, br: bufio.NewReaderSize(cr, size)}
	return r
}

// countReader counts what it reads and remembers the reader's error, so
// that a decoder's error can be told apart from the input's.
type countReader struct {
	r   io.Reader
	n   int64
	err error
	// With tail set, it keeps the 12 bytes that end at the last non-NUL
	// byte (an xz stream footer, before any stream padding).
	tail   bool
	last   [12]byte // the input's last 12 bytes
	foot   [12]byte // the 12 bytes ending at offset nzEnd
	nzEnd  int64
	nzSeen bool
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.tail && n > 0 {
		c.track(p[:n])
	}
	c.n += int64(n)
	c.err = err // the last read's: decoders may retry after an error
	return n, err
}

func (c *countReader) track(p []byte) {
	j := len(p) - 1
	for j >= 0 && p[j] == 0 {
		j--
	}
	if j >= 0 {
		var w []byte
		if j+1 >= 12 {
			w = p[j+1-12 : j+1]
		} else {
			w = append(c.last[j+1:], p[:j+1]...)
		}
		copy(c.foot[:], w)
		c.nzEnd, c.nzSeen = c.n+int64(j)+1, true
	}
	if len(p) >= 12 {
		copy(c.last[:], p[len(p)-12:])
	} else {
		copy(c.last[:], append(c.last[len(p):], p...))
	}
}

// xzEnd checks, where the xz decoder reports the end, that the input
// really ended after a stream footer and stream padding: ulikunitz/xz
// reports an input cut right before or inside a block header as a clean
// end.
type xzEnd struct {
	r   io.Reader
	src *countReader
}

func (x *xzEnd) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	if err == io.EOF {
		c := x.src
		f := c.foot
		ok := c.nzSeen && c.nzEnd%4 == 0 && (c.n-c.nzEnd)%4 == 0 &&
			f[10] == 'Y' && f[11] == 'Z' && crc32.ChecksumIEEE(f[4:10]) == binary.LittleEndian.Uint32(f[0:4])
		if !ok {
			return n, errTruncated
		}
	}
	return n, err
}

type reader struct {
	c     Compression
	src   *countReader
	br    *bufio.Reader
	dec   io.Reader
	close func()
	out   int64
	err   error
	ext   bool // an external decoder: it classifies its own errors
}

func (r *reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.dec == nil {
		if err := r.init(); err != nil {
			r.err = r.wrap(err)
			return 0, r.err
		}
	}
	n, err := r.dec.Read(p)
	r.out += int64(n)
	switch {
	case err == nil:
	case err == io.EOF:
		r.err = err
		if n > 0 && err == io.EOF {
			return n, nil // EOF on the next call, as most readers do
		}
	case r.ext:
		r.err = err
	default:
		r.err = r.wrap(err)
	}
	return n, r.err
}

// inOff is how far the decoder has got into the compressed input.
func (r *reader) inOff() int64 { return r.src.n - int64(r.br.Buffered()) }

// wrap classifies a decoder error.
func (r *reader) wrap(err error) error {
	var ce *CorruptError
	if errors.As(err, &ce) {
		return err
	}
	if e := r.src.err; e != nil && e != io.EOF {
		// The input failed; whatever the decoder made of it is not damage.
		return fmt.Errorf("%s: reading compressed input at offset %d: %w", r.c, r.src.n, e)
	}
	if err == io.ErrUnexpectedEOF {
		err = errTruncated
	}
	return &CorruptError{Format: r.c, Offset: r.out, InputOffset: r.inOff(), Err: err}
}

func (r *reader) Close() error {
	if r.close != nil {
		r.close()
		r.close = nil
	}
	if r.err == nil {
		r.err = errors.New("decomp: read after Close")
	}
	return nil
}

func (r *reader) init() error {
	switch r.c {
	case None:
		r.dec = r.br
	case Gzip:
		if err := r.checkMagic(); err != nil {
			return err
		}
		r.dec = &gzipMulti{br: r.br}
	case Bzip2:
		if err := r.checkStart(); err != nil {
			return err
		}
		r.dec = bzip2.NewReader(r.br)
	case XZ, LZMA:
		if ExternalXZ != "" {
			e, err := newExternal(ExternalXZ, r.c, r.src)
			if err != nil {
				return err
			}
			r.dec, r.close, r.ext = e, e.Close, true
			return nil
		}
		if r.c == LZMA {
			l, err := lzma.ReaderConfig{DictCap: XZMaxDict}.NewReader(r.br)
			if err != nil {
				return err
			}
			r.dec = &trailCheck{r: l, br: r.br}
			return nil
		}
		r.src.tail = true // before the first read of the input
		if err := r.checkMagic(); err != nil {
			return err
		}
		x, err := xz.ReaderConfig{DictCap: xzDictCap(r.br)}.NewReader(r.br)
		if err != nil {
			return err
		}
		r.dec = &xzEnd{r: x, src: r.src}
	case Zstd:
		if ExternalZstd != "" {
			// before anything reads from r.src into r.br
			e, err := newExternal(ExternalZstd, r.c, r.src)
			if err != nil {
				return err
			}
			r.dec, r.close, r.ext = e, e.Close, true
			return nil
		}
		if err := r.checkStart(); err != nil {
			return err
		}
		if NativeZstd {
			z, err := newNativeZstd(r.br)
			if err != nil {
				return err
			}
			r.dec, r.close = z, z.Close
			return nil
		}
		d, err := zstd.NewReader(r.br,
			zstd.WithDecoderConcurrency(zstdConcurrency),
			zstd.WithDecoderMaxWindow(ZstdMaxWindow),
			zstd.WithDecoderLowmem(false))
		if err != nil {
			return err
		}
		r.dec = d
		r.close = d.Close
	case LZ4:
		if err := r.checkStart(); err != nil {
			return err
		}
		r.dec = &lz4Reader{br: r.br}
	case rawDeflate:
		f := flate.NewReader(r.br)
		r.dec = f
		r.close = func() { f.Close() }
	default:
		return fmt.Errorf("compression %d: %w", r.c, ErrUnsupported)
	}
	return nil
}

// checkStart fails an empty input as truncated (as zstd -dc and bzip2 -dc
// do; this package always held lz4 to it too), then checks the magic.
func (r *reader) checkStart() error {
	if _, err := r.br.Peek(1); err == io.EOF {
		return errTruncated
	} else if err != nil {
		return err
	}
	return r.checkMagic()
}

// checkMagic fails at offset 0 when the input does not start with the
// magic of r.c (a damaged file, or one whose name says a compression it
// is not in: see Detect): the decoders would fail too, but less clearly.
// An empty input, or a short one that agrees as far as it goes, is left
// to the decoder. The external decoders check for themselves.
func (r *reader) checkMagic() error {
	h, _ := r.br.Peek(16)
	if len(h) == 0 || matches(Format{Compression: r.c}, h) {
		return nil
	}
	return &CorruptError{Format: r.c, Offset: 0, InputOffset: 0,
		Err: fmt.Errorf("not %s data: no %s magic (starts % x)", r.c, r.c, h[:min(len(h), 8)])}
}

// rawDeflate is zip's method 8: a deflate stream without gzip framing.
// Internal: it is never detected, only used for zip members.
const rawDeflate Compression = 100

// gzipMulti reads every member of a gzip file. Between members, and after
// the last, NUL padding is skipped (Python's gzip module does the same);
// anything else must be another member.
type gzipMulti struct {
	br      *bufio.Reader
	z       *gzip.Reader
	members int
	done    bool
}

func (g *gzipMulti) Read(p []byte) (int, error) {
	if g.done {
		return 0, io.EOF
	}
	if g.z == nil {
		if _, err := g.br.Peek(1); err == io.EOF {
			g.done = true // an empty file reads as empty, as in Python
			return 0, io.EOF
		} else if err != nil {
			return 0, err
		}
		z, err := gzip.NewReader(g.br)
		if err != nil {
			return 0, gzipErr(err)
		}
		z.Multistream(false)
		g.z = z
	}
	for {
		n, err := g.z.Read(p)
		if err != io.EOF {
			if err != nil {
				err = gzipErr(err)
			}
			return n, err
		}
		g.members++
		more, perr := g.skipPadding()
		if perr != nil {
			return n, perr
		}
		if !more {
			g.done = true
			return n, io.EOF
		}
		if err := g.z.Reset(g.br); err != nil {
			return n, gzipErr(err)
		}
		g.z.Multistream(false)
		if n > 0 {
			return n, nil
		}
	}
}

// skipPadding skips NUL bytes; more reports whether anything follows.
func (g *gzipMulti) skipPadding() (more bool, err error) {
	for {
		b, err := g.br.Peek(1)
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if b[0] != 0 {
			return true, nil
		}
		// Discard a run of zeros.
		buf, _ := g.br.Peek(g.br.Buffered())
		i := 0
		for i < len(buf) && buf[i] == 0 {
			i++
		}
		g.br.Discard(i)
	}
}

func gzipErr(err error) error {
	if err == gzip.ErrHeader {
		return fmt.Errorf("%w (not a gzip member header)", err)
	}
	return err
}

// trailCheck makes data after a single-stream format's end an error.
type trailCheck struct {
	r  io.Reader
	br *bufio.Reader
}

func (t *trailCheck) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err == io.EOF {
		if _, perr := t.br.Peek(1); perr == nil {
			return n, errTrailing
		} else if perr != io.EOF {
			return n, perr
		}
	}
	return n, err
}

// sniffTar decodes the start of a compressed head to see whether it holds
// a tar.
func sniffTar(c Compression, head []byte) bool {
	if c == None || len(head) < 16 {
		return false
	}
	r := NewReader(c, bytes.NewReader(head))
	defer r.Close()
	buf := make([]byte, 512)
	n, _ := io.ReadFull(r, buf)
	return n == 512 && IsTarHeader(buf)
}

// xzDictCap is the dictionary to decode an .xz stream with: ulikunitz/xz
// allocates exactly the capacity it is given (XZMaxDict would be 1 GiB
// for every file), so it is the first block's LZMA2 dictionary size, read
// from the block header, and at least 8 MiB (what xz -0 to -6 use), so
// that a later stream of a concatenated file with a bigger preset
// usually still fits; at most XZMaxDict.
func xzDictCap(br *bufio.Reader) int {
	const floor = 8 << 20
	// stream header (12 bytes), then the block header: its size, flags,
	// optional sizes, and the filter flags
	h, _ := br.Peek(12 + 1024)
	if len(h) < 14 || h[12] == 0 {
		return floor // no block (an index follows), or too short to tell
	}
	bh := h[12:]
	size := (int(bh[0]) + 1) * 4
	if size > len(bh) {
		return floor
	}
	bh = bh[:size]
	flags := bh[1]
	i := 2
	varint := func() (uint64, bool) {
		var v uint64
		for k := 0; k < 9 && i < len(bh); k++ {
			b := bh[i]
			i++
			v |= uint64(b&0x7f) << (7 * k)
			if b < 0x80 {
				return v, true
			}
		}
		return 0, false
	}
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} {
		if present {
			if _, ok := varint(); !ok {
				return floor
			}
		}
	}
	for f := 0; f <= int(flags&3); f++ {
		id, ok1 := varint()
		n, ok2 := varint()
		if !ok1 || !ok2 || i+int(n) > len(bh) {
			return floor
		}
		if id == 0x21 && n == 1 { // LZMA2: one byte encodes the dictionary size
			p := bh[i]
			if p > 40 {
				return floor
			}
			d := int64(0xFFFFFFFF)
			if p < 40 {
				d = int64(2|p&1) << (p/2 + 11)
			}
			return int(min(max(d, floor), XZMaxDict))
		}
		i += int(n)
	}
	return floor
}
