package decomp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// SizeOptions bound what KnownSize may do to find a size.
type SizeOptions struct {
	// VerifyLimit: a compressed file this small (or smaller) is
	// decompressed, discarding the output, to count its size exactly; this
	// is how gzip, bzip2 and lz4 files without a content size get a size
	// at all. 0 disables it.
	VerifyLimit int64
	// VerifyOutputLimit stops such a count (a small file that expands to
	// more than this is left unknown: a compression bomb costs no more
	// than this much work).
	VerifyOutputLimit int64
	// MaxHeaderReads bounds the small reads a zstd or lz4 walk over frame
	// and block headers may do (one per block: 128 KiB of zstd data, up
	// to 4 MiB of lz4); past it the size is unknown.
	MaxHeaderReads int
}

// DefaultSizeOptions: count files up to 1 MiB, walk up to 65536 block
// headers (8 GiB of zstd data at its usual 128 KiB blocks).
var DefaultSizeOptions = SizeOptions{VerifyLimit: 1 << 20, VerifyOutputLimit: 256 << 20, MaxHeaderReads: 1 << 16}

// KnownSize is KnownSize with DefaultSizeOptions.
func KnownSize(ctx context.Context, f Format, r io.ReaderAt, compressedSize int64) (int64, bool, error) {
	return DefaultSizeOptions.KnownSize(ctx, f, r, compressedSize)
}

// KnownSize gives the exact decompressed size of a compressed file of
// compressedSize bytes (< 0: unknown) where it can be had without
// decompressing it, and ok=false otherwise. It is never wrong for a file
// that decompresses without error: a size is given only from information
// the decoder also checks, or by counting. The rules:
//
//   - None: compressedSize.
//   - xz: the sum of the uncompressed sizes in the index of every stream,
//     walking the streams backwards from the end (2–3 small reads per
//     stream, each index's CRC32 checked).
//   - zstd: the sum of Frame_Content_Size over all frames, when every frame
//     has one, walking frame and block headers (one 3-byte read per block);
//     skippable frames count nothing.
//   - lz4: likewise with each frame's content size (lz4 --content-size),
//     walking block headers; the legacy format has no size.
//   - legacy .lzma: the size in its header, when not "unknown".
//   - gzip: never from the ISIZE trailer alone. ISIZE is the size modulo
//     2^32 of the last member only, and whether a file has more than one
//     member (concatenated files, bgzip, `gzip >>`) cannot be told
//     without inflating it: the end of a deflate stream is only found by
//     decoding it. So gzip's size is known by counting (VerifyLimit),
//     or not at all.
//   - bzip2: its format records no size: by counting, or not at all.
//   - archives (tar, zip): not a file; see the members' own sizes.
//
// Any format falls back to counting when the file is no larger than
// VerifyLimit. err is non-nil for an error from r, or (matching
// ErrCorrupt) for headers that cannot be valid; ok is false then.
func (o SizeOptions) KnownSize(ctx context.Context, f Format, r io.ReaderAt, compressedSize int64) (int64, bool, error) {
	if f.Archive != NoArchive {
		return 0, false, nil
	}
	if f.Compression == None {
		return compressedSize, compressedSize >= 0, nil
	}
	var (
		size int64
		ok   bool
		err  error
	)
	if compressedSize >= 0 {
		switch f.Compression {
		case XZ:
			size, ok, err = xzSize(r, compressedSize)
		case Zstd:
			size, ok, err = zstdSize(r, compressedSize, o.MaxHeaderReads)
		case LZ4:
			size, ok, err = lz4Size(r, compressedSize, o.MaxHeaderReads)
		case LZMA:
			size, ok, err = lzmaSize(r)
		}
		if err != nil {
			return 0, false, err
		}
		if ok {
			return size, true, nil
		}
	}
	if o.VerifyLimit > 0 && compressedSize >= 0 && compressedSize <= o.VerifyLimit {
		return countSize(ctx, f.Compression, r, compressedSize, o.VerifyOutputLimit)
	}
	return 0, false, nil
}

// countSize decompresses and counts, up to limit output bytes.
func countSize(ctx context.Context, c Compression, r io.ReaderAt, n, limit int64) (int64, bool, error) {
	d := NewReader(c, io.NewSectionReader(r, 0, n))
	defer d.Close()
	buf := make([]byte, 256<<10)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return 0, false, err
		}
		k, err := d.Read(buf)
		total += int64(k)
		if total > limit {
			return 0, false, nil
		}
		if err == io.EOF {
			return total, true, nil
		}
		if err != nil {
			return 0, false, err
		}
	}
}

// headerReader does the small reads of a header walk, counting them.
type headerReader struct {
	r     io.ReaderAt
	size  int64
	reads int
	max   int
	c     Compression
}

var errTooManyReads = errors.New("too many header reads")

func (h *headerReader) read(off int64, n int) ([]byte, error) {
	h.reads++
	if h.max > 0 && h.reads > h.max {
		return nil, errTooManyReads
	}
	if off < 0 || off+int64(n) > h.size {
		return nil, h.corrupt(off, errTruncated)
	}
	b := make([]byte, n)
	k, err := h.r.ReadAt(b, off)
	if k == n {
		return b, nil
	}
	if err == nil || err == io.EOF {
		return nil, h.corrupt(off, errTruncated)
	}
	return nil, err
}

func (h *headerReader) corrupt(off int64, err error) error {
	return &CorruptError{Format: h.c, Offset: -1, InputOffset: off, Err: err}
}

// zstdSize walks zstd frames (RFC 8878 §3.1): every frame must declare
// Frame_Content_Size.
func zstdSize(r io.ReaderAt, n int64, maxReads int) (int64, bool, error) {
	h := &headerReader{r: r, size: n, max: maxReads, c: Zstd}
	if n == 0 {
		// no frame at all: zstd -dc fails ("unexpected end of file"),
		// and so does the decoder; an empty file is not a size-0 one
		return h.done(h.corrupt(0, errTruncated))
	}
	var total, off int64
	for off < n {
		b, err := h.read(off, int(min(18, n-off))) // magic + the largest frame header
		if err != nil {
			return h.done(err)
		}
		if len(b) < 4 {
			return h.done(h.corrupt(off, errTruncated))
		}
		magic := binary.LittleEndian.Uint32(b)
		if magic&0xFFFFFFF0 == skipMagicLo {
			if len(b) < 8 {
				return h.done(h.corrupt(off, errTruncated))
			}
			off += 8 + int64(binary.LittleEndian.Uint32(b[4:8]))
			continue
		}
		if magic != 0xFD2FB528 {
			return h.done(h.corrupt(off, fmt.Errorf("bad frame magic %#x", magic)))
		}
		if len(b) < 5 {
			return h.done(h.corrupt(off, errTruncated))
		}
		fhd := b[4]
		if fhd&0x08 != 0 {
			return h.done(h.corrupt(off, errors.New("reserved bit set in frame header")))
		}
		fcsFlag := fhd >> 6
		single := fhd&0x20 != 0
		checksum := fhd&0x04 != 0
		didSize := [4]int{0, 1, 2, 4}[fhd&3]
		fcsSize := [4]int{0, 2, 4, 8}[fcsFlag]
		if fcsFlag == 0 && single {
			fcsSize = 1
		}
		hdr := 5 + didSize + fcsSize
		if !single {
			hdr++ // Window_Descriptor
		}
		if fcsSize == 0 {
			return 0, false, nil // this frame does not say
		}
		if len(b) < hdr {
			return h.done(h.corrupt(off, errTruncated))
		}
		fb := b[hdr-fcsSize : hdr]
		var fcs uint64
		switch fcsSize {
		case 1:
			fcs = uint64(fb[0])
		case 2:
			fcs = uint64(binary.LittleEndian.Uint16(fb)) + 256
		case 4:
			fcs = uint64(binary.LittleEndian.Uint32(fb))
		case 8:
			fcs = binary.LittleEndian.Uint64(fb)
		}
		if fcs > 1<<62 || total+int64(fcs) < total {
			return h.done(h.corrupt(off, errors.New("frame content size out of range")))
		}
		total += int64(fcs)
		off += int64(hdr)
		// Blocks.
		for {
			bh, err := h.read(off, 3)
			if err != nil {
				return h.done(err)
			}
			v := uint32(bh[0]) | uint32(bh[1])<<8 | uint32(bh[2])<<16
			last := v&1 != 0
			btype := (v >> 1) & 3
			bsize := int64(v >> 3)
			off += 3
			switch btype {
			case 0, 2: // raw, compressed
				off += bsize
			case 1: // RLE: one byte
				off++
			case 3:
				return h.done(h.corrupt(off-3, errors.New("reserved block type")))
			}
			if bsize > 128<<10 {
				return h.done(h.corrupt(off, errors.New("block larger than 128 KiB")))
			}
			if off > n {
				return h.done(h.corrupt(off, errTruncated))
			}
			if last {
				break
			}
		}
		if checksum {
			off += 4
		}
	}
	if off != n {
		return h.done(h.corrupt(n, errTruncated))
	}
	return total, true, nil
}

// done turns a walk's error into KnownSize's result: running out of
// header reads is "unknown", anything else an error.
func (h *headerReader) done(err error) (int64, bool, error) {
	if errors.Is(err, errTooManyReads) {
		return 0, false, nil
	}
	return 0, false, err
}

// lz4Size walks LZ4 frames (lz4_Frame_format.md): every frame must have
// its Content Size.
func lz4Size(r io.ReaderAt, n int64, maxReads int) (int64, bool, error) {
	h := &headerReader{r: r, size: n, max: maxReads, c: LZ4}
	var total, off int64
	for off < n {
		b, err := h.read(off, int(min(19, n-off)))
		if err != nil {
			return h.done(err)
		}
		if len(b) < 4 {
			return h.done(h.corrupt(off, errTruncated))
		}
		magic := binary.LittleEndian.Uint32(b)
		if magic&0xFFFFFFF0 == skipMagicLo {
			if len(b) < 8 {
				return h.done(h.corrupt(off, errTruncated))
			}
			off += 8 + int64(binary.LittleEndian.Uint32(b[4:8]))
			continue
		}
		if magic != 0x184D2204 {
			return 0, false, nil // legacy frames (0x184C2102) have no size; otherwise the decoder will say
		}
		if len(b) < 7 {
			return h.done(h.corrupt(off, errTruncated))
		}
		flg := b[4]
		if flg>>6 != 1 {
			return h.done(h.corrupt(off, errors.New("unsupported frame version")))
		}
		blockChecksum := flg&0x10 != 0
		hasSize := flg&0x08 != 0
		contentChecksum := flg&0x04 != 0
		hasDict := flg&0x01 != 0
		if !hasSize {
			return 0, false, nil
		}
		hdr := 4 + 2 + 8 + 1
		if hasDict {
			hdr += 4
		}
		if len(b) < hdr {
			return h.done(h.corrupt(off, errTruncated))
		}
		size := binary.LittleEndian.Uint64(b[6:14])
		if size > 1<<62 || total+int64(size) < total {
			return h.done(h.corrupt(off, errors.New("content size out of range")))
		}
		total += int64(size)
		off += int64(hdr)
		for {
			bh, err := h.read(off, 4)
			if err != nil {
				return h.done(err)
			}
			v := binary.LittleEndian.Uint32(bh)
			off += 4
			if v == 0 { // EndMark
				break
			}
			off += int64(v & 0x7FFFFFFF)
			if blockChecksum {
				off += 4
			}
			if off > n {
				return h.done(h.corrupt(off, errTruncated))
			}
		}
		if contentChecksum {
			off += 4
		}
	}
	if off != n {
		return h.done(h.corrupt(n, errTruncated))
	}
	return total, true, nil
}

// lzmaSize reads the uncompressed size in a legacy .lzma header.
func lzmaSize(r io.ReaderAt) (int64, bool, error) {
	var b [13]byte
	if k, err := r.ReadAt(b[:], 0); k < 13 {
		if err == nil || err == io.EOF {
			return 0, false, &CorruptError{Format: LZMA, Offset: -1, InputOffset: 0, Err: errTruncated}
		}
		return 0, false, err
	}
	s := binary.LittleEndian.Uint64(b[5:])
	if s == ^uint64(0) || s > 1<<62 {
		return 0, false, nil
	}
	return int64(s), true, nil
}

// xzSize reads the index of every stream, from the last backwards
// (xz-file-format-1.1.0 §2.1.2, §4).
func xzSize(r io.ReaderAt, n int64) (int64, bool, error) {
	h := &headerReader{r: r, size: n, c: XZ}
	var total int64
	end := n
	for end > 0 {
		// Stream padding: multiples of four NUL bytes.
		b, err := h.read(end-4, 4)
		if err != nil {
			return 0, false, err
		}
		if binary.LittleEndian.Uint32(b) == 0 {
			end -= 4
			continue
		}
		if end < 24 {
			return 0, false, h.corrupt(end, errTruncated)
		}
		foot, err := h.read(end-12, 12)
		if err != nil {
			return 0, false, err
		}
		if foot[10] != 'Y' || foot[11] != 'Z' {
			return 0, false, h.corrupt(end-12, errors.New("no stream footer"))
		}
		if crc32.ChecksumIEEE(foot[4:10]) != binary.LittleEndian.Uint32(foot[0:4]) {
			return 0, false, h.corrupt(end-12, errors.New("stream footer CRC mismatch"))
		}
		flags := foot[8:10]
		indexSize := (int64(binary.LittleEndian.Uint32(foot[4:8])) + 1) * 4
		indexOff := end - 12 - indexSize
		if indexOff < 12 || indexSize > 1<<26 {
			return 0, false, h.corrupt(end-12, errors.New("index size out of range"))
		}
		idx, err := h.read(indexOff, int(indexSize))
		if err != nil {
			return 0, false, err
		}
		body := idx[:len(idx)-4]
		if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(idx[len(idx)-4:]) {
			return 0, false, h.corrupt(indexOff, errors.New("index CRC mismatch"))
		}
		if body[0] != 0 {
			return 0, false, h.corrupt(indexOff, errors.New("bad index indicator"))
		}
		p := body[1:]
		count, k := uvarint(p)
		if k <= 0 {
			return 0, false, h.corrupt(indexOff, errors.New("bad index"))
		}
		p = p[k:]
		var blocks, usize int64
		for i := uint64(0); i < count; i++ {
			unpadded, k1 := uvarint(p)
			if k1 <= 0 {
				return 0, false, h.corrupt(indexOff, errors.New("bad index record"))
			}
			p = p[k1:]
			u, k2 := uvarint(p)
			if k2 <= 0 {
				return 0, false, h.corrupt(indexOff, errors.New("bad index record"))
			}
			p = p[k2:]
			if unpadded > 1<<62 || u > 1<<62 {
				return 0, false, h.corrupt(indexOff, errors.New("index record out of range"))
			}
			blocks += (int64(unpadded) + 3) &^ 3
			usize += int64(u)
			if usize < 0 || blocks < 0 {
				return 0, false, h.corrupt(indexOff, errors.New("index sizes overflow"))
			}
		}
		for _, c := range p { // index padding
			if c != 0 {
				return 0, false, h.corrupt(indexOff, errors.New("bad index padding"))
			}
		}
		start := indexOff - blocks - 12
		if start < 0 {
			return 0, false, h.corrupt(indexOff, errors.New("index does not fit the file"))
		}
		head, err := h.read(start, 12)
		if err != nil {
			return 0, false, err
		}
		if string(head[:6]) != string(xzMagic) || head[6] != flags[0] || head[7] != flags[1] ||
			crc32.ChecksumIEEE(head[6:8]) != binary.LittleEndian.Uint32(head[8:12]) {
			return 0, false, h.corrupt(start, errors.New("stream header does not match its footer"))
		}
		total += usize
		end = start
	}
	return total, true, nil
}

// uvarint is xz's multibyte integer (at most 9 bytes).
func uvarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 9; i++ {
		v |= uint64(b[i]&0x7F) << (7 * i)
		if b[i]&0x80 == 0 {
			if i > 0 && b[i] == 0 {
				return 0, -1 // not minimal
			}
			return v, i + 1
		}
	}
	return 0, -1
}
