package decomp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/pierrec/lz4/v4"
)

// lz4Reader reads LZ4 frames (lz4_Frame_format.md 1.6.x): concatenated
// frames, skippable frames, the legacy frame, independent and linked
// blocks, block and content checksums, and the content size, which is
// checked. Blocks are decoded by pierrec/lz4; the framing is done here,
// because that library reports an input cut inside a frame header as a
// clean end and does not check the content size.
type lz4Reader struct {
	br *bufio.Reader

	out []byte // decoded, not yet returned: out[pos:]
	pos int

	inFrame     bool
	legacy      bool
	frames      int
	blockMax    int
	indep       bool
	blockSum    bool
	contentSum  bool
	contentSize int64 // -1 when the frame has none
	produced    int64
	hash        xxh32

	cbuf    []byte // a compressed block
	dbuf    []byte // the decode buffer: [history (linked blocks) | block]
	hist    int    // bytes of history at the start of dbuf
	histEnd int    // end of the last block in dbuf
	err     error
}

const (
	lz4FrameMagic  = 0x184D2204
	lz4LegacyMagic = 0x184C2102
	lz4LegacyBlock = 8 << 20
	lz4HistSize    = 64 << 10
)

func (l *lz4Reader) Read(p []byte) (int, error) {
	for l.pos == len(l.out) {
		if l.err != nil {
			return 0, l.err
		}
		if err := l.next(); err != nil {
			l.err = err
			if l.pos == len(l.out) {
				return 0, err
			}
		}
	}
	n := copy(p, l.out[l.pos:])
	l.pos += n
	return n, nil
}

// readFull reads exactly len(b) bytes, any shortfall being truncation.
func (l *lz4Reader) readFull(b []byte) error {
	if _, err := io.ReadFull(l.br, b); err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

func isLZ4Magic(v uint32) bool {
	return v == lz4FrameMagic || v == lz4LegacyMagic || v&0xFFFFFFF0 == skipMagicLo
}

// next decodes the next block (or frame boundary) into l.out.
func (l *lz4Reader) next() error {
	l.out, l.pos = nil, 0
	if !l.inFrame {
		return l.startFrame()
	}
	var hb [4]byte
	if l.legacy {
		// A legacy frame ends at the end of the input, or where the
		// next frame's magic stands in place of a block size.
		h, err := l.br.Peek(4)
		if len(h) == 0 && err == io.EOF {
			return io.EOF
		}
		if len(h) < 4 {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if isLZ4Magic(binary.LittleEndian.Uint32(h)) {
			l.inFrame = false
			l.frames++
			return nil
		}
	}
	if err := l.readFull(hb[:]); err != nil {
		return err
	}
	v := binary.LittleEndian.Uint32(hb[:])
	if v == 0 && !l.legacy {
		return l.endFrame()
	}
	raw := v&0x80000000 != 0 && !l.legacy
	size := int(v & 0x7FFFFFFF)
	if l.legacy {
		size = int(v)
	}
	limit := l.blockMax
	if !raw {
		limit = lz4.CompressBlockBound(l.blockMax)
	}
	if size > limit || size == 0 {
		return fmt.Errorf("lz4: block size %d out of range (max %d)", size, limit)
	}
	if cap(l.cbuf) < size {
		l.cbuf = make([]byte, size)
	}
	c := l.cbuf[:size]
	if err := l.readFull(c); err != nil {
		return err
	}
	if l.blockSum {
		if err := l.readFull(hb[:]); err != nil {
			return err
		}
		if want, got := binary.LittleEndian.Uint32(hb[:]), xxh32Sum(c); want != got {
			return fmt.Errorf("lz4: block checksum mismatch (%08x, recorded %08x)", got, want)
		}
	}
	// Decode after the history kept for linked blocks: the last 64 KiB
	// of output, moved to the front now that the last block is consumed.
	l.hist = 0
	if !l.indep {
		l.hist = l.histEnd
		if l.hist > lz4HistSize {
			copy(l.dbuf, l.dbuf[l.hist-lz4HistSize:l.hist])
			l.hist = lz4HistSize
		}
	}
	if need := l.hist + l.blockMax; len(l.dbuf) < need {
		nb := make([]byte, need)
		copy(nb, l.dbuf[:l.hist])
		l.dbuf = nb
	}
	dst := l.dbuf[l.hist : l.hist+l.blockMax]
	var n int
	if raw {
		n = copy(dst, c)
	} else {
		var err error
		if l.hist > 0 {
			n, err = lz4.UncompressBlockWithDict(c, dst, l.dbuf[:l.hist])
		} else {
			n, err = lz4.UncompressBlock(c, dst)
		}
		if err != nil {
			return fmt.Errorf("lz4: %w", err)
		}
	}
	out := dst[:n]
	l.produced += int64(n)
	if l.contentSize >= 0 && l.produced > l.contentSize {
		return fmt.Errorf("lz4: frame longer than its content size %d", l.contentSize)
	}
	if l.contentSum {
		l.hash.write(out)
	}
	l.out = out
	l.histEnd = l.hist + n
	return nil
}

func (l *lz4Reader) startFrame() error {
	var m [4]byte
	n, err := io.ReadFull(l.br, m[:])
	if n == 0 && err == io.EOF {
		if l.frames == 0 {
			return io.ErrUnexpectedEOF // an empty input is no lz4 stream
		}
		return io.EOF
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	magic := binary.LittleEndian.Uint32(m[:])
	switch {
	case magic&0xFFFFFFF0 == skipMagicLo:
		var s [4]byte
		if err := l.readFull(s[:]); err != nil {
			return err
		}
		size := int64(binary.LittleEndian.Uint32(s[:]))
		if k, err := l.br.Discard(int(size)); int64(k) < size {
			if err == io.EOF || err == nil {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		l.frames++
		return nil
	case magic == lz4LegacyMagic:
		l.inFrame, l.legacy = true, true
		l.blockMax, l.indep = lz4LegacyBlock, true
		l.blockSum, l.contentSum, l.contentSize = false, false, -1
		l.histEnd = 0
		return nil
	case magic != lz4FrameMagic:
		if l.frames > 0 {
			return errTrailing
		}
		return fmt.Errorf("lz4: bad magic %#08x", magic)
	}
	var d [2]byte
	if err := l.readFull(d[:]); err != nil {
		return err
	}
	flg, bd := d[0], d[1]
	if flg>>6 != 1 {
		return fmt.Errorf("lz4: frame version %d", flg>>6)
	}
	if flg&0x02 != 0 || bd&0x8F != 0 {
		return errors.New("lz4: reserved bits set in frame descriptor")
	}
	desc := []byte{flg, bd}
	l.indep = flg&0x20 != 0
	l.blockSum = flg&0x10 != 0
	hasSize := flg&0x08 != 0
	l.contentSum = flg&0x04 != 0
	hasDict := flg&0x01 != 0
	switch bd >> 4 & 7 {
	case 4:
		l.blockMax = 64 << 10
	case 5:
		l.blockMax = 256 << 10
	case 6:
		l.blockMax = 1 << 20
	case 7:
		l.blockMax = 4 << 20
	default:
		return fmt.Errorf("lz4: block size code %d", bd>>4&7)
	}
	l.contentSize = -1
	if hasSize {
		var s [8]byte
		if err := l.readFull(s[:]); err != nil {
			return err
		}
		desc = append(desc, s[:]...)
		v := binary.LittleEndian.Uint64(s[:])
		if v > 1<<62 {
			return errors.New("lz4: content size out of range")
		}
		l.contentSize = int64(v)
	}
	if hasDict {
		var s [4]byte
		if err := l.readFull(s[:]); err != nil {
			return err
		}
		return fmt.Errorf("lz4: frame needs dictionary %#x: %w", binary.LittleEndian.Uint32(s[:]), ErrUnsupported)
	}
	var hc [1]byte
	if err := l.readFull(hc[:]); err != nil {
		return err
	}
	if want := byte(xxh32Sum(desc) >> 8); hc[0] != want {
		return errors.New("lz4: frame descriptor checksum mismatch")
	}
	l.inFrame, l.legacy = true, false
	l.produced, l.histEnd = 0, 0
	l.hash.reset()
	return nil
}

func (l *lz4Reader) endFrame() error {
	if l.contentSum {
		var s [4]byte
		if err := l.readFull(s[:]); err != nil {
			return err
		}
		if want, got := binary.LittleEndian.Uint32(s[:]), l.hash.sum(); want != got {
			return fmt.Errorf("lz4: content checksum mismatch (%08x, recorded %08x)", got, want)
		}
	}
	if l.contentSize >= 0 && l.produced != l.contentSize {
		return fmt.Errorf("lz4: frame holds %d bytes, its content size says %d", l.produced, l.contentSize)
	}
	l.inFrame = false
	l.frames++
	return nil
}

// xxh32 is XXH32 with seed 0, streaming.
type xxh32 struct {
	v   [4]uint32
	buf [16]byte
	n   int // bytes in buf
	len uint64
}

var (
	xxPrime1 uint32 = 2654435761
	xxPrime2 uint32 = 2246822519
	xxPrime3 uint32 = 3266489917
	xxPrime4 uint32 = 668265263
	xxPrime5 uint32 = 374761393
)

func (x *xxh32) reset() {
	*x = xxh32{}
	x.v = [4]uint32{xxPrime1 + xxPrime2, xxPrime2, 0, 0 - xxPrime1}
}

func xxRound(acc, in uint32) uint32 {
	return bits.RotateLeft32(acc+in*xxPrime2, 13) * xxPrime1
}

func (x *xxh32) write(p []byte) {
	x.len += uint64(len(p))
	if x.n > 0 {
		k := copy(x.buf[x.n:], p)
		x.n += k
		p = p[k:]
		if x.n < 16 {
			return
		}
		x.stripe(x.buf[:])
		x.n = 0
	}
	v0, v1, v2, v3 := x.v[0], x.v[1], x.v[2], x.v[3]
	for len(p) >= 16 {
		v0 = xxRound(v0, binary.LittleEndian.Uint32(p[0:]))
		v1 = xxRound(v1, binary.LittleEndian.Uint32(p[4:]))
		v2 = xxRound(v2, binary.LittleEndian.Uint32(p[8:]))
		v3 = xxRound(v3, binary.LittleEndian.Uint32(p[12:]))
		p = p[16:]
	}
	x.v = [4]uint32{v0, v1, v2, v3}
	x.n = copy(x.buf[:], p)
}

func (x *xxh32) stripe(p []byte) {
	x.v[0] = xxRound(x.v[0], binary.LittleEndian.Uint32(p[0:]))
	x.v[1] = xxRound(x.v[1], binary.LittleEndian.Uint32(p[4:]))
	x.v[2] = xxRound(x.v[2], binary.LittleEndian.Uint32(p[8:]))
	x.v[3] = xxRound(x.v[3], binary.LittleEndian.Uint32(p[12:]))
}

func (x *xxh32) sum() uint32 {
	var h uint32
	if x.len >= 16 {
		h = bits.RotateLeft32(x.v[0], 1) + bits.RotateLeft32(x.v[1], 7) + bits.RotateLeft32(x.v[2], 12) + bits.RotateLeft32(x.v[3], 18)
	} else {
		h = x.v[2] + xxPrime5
	}
	h += uint32(x.len)
	p := x.buf[:x.n]
	for len(p) >= 4 {
		h += binary.LittleEndian.Uint32(p) * xxPrime3
		h = bits.RotateLeft32(h, 17) * xxPrime4
		p = p[4:]
	}
	for _, b := range p {
		h += uint32(b) * xxPrime5
		h = bits.RotateLeft32(h, 11) * xxPrime1
	}
	h ^= h >> 15
	h *= xxPrime2
	h ^= h >> 13
	h *= xxPrime3
	h ^= h >> 16
	return h
}

func xxh32Sum(p []byte) uint32 {
	var x xxh32
	x.reset()
	x.write(p)
	return x.sum()
}
