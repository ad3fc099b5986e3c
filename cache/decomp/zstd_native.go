//go:build cgo

package decomp

/*
#include <stddef.h>

// libzstd's stable streaming API (zstd.h), declared here rather than
// included: the library is compiled into github.com/DataDog/zstd, whose
// headers are not on our include path. The two buffer structs have
// ZSTD_inBuffer's and ZSTD_outBuffer's layout.
typedef struct ZSTD_DCtx_s ZSTD_DCtx;
typedef struct { const void *src; size_t size; size_t pos; } izs_in;
typedef struct { void *dst; size_t size; size_t pos; } izs_out;
ZSTD_DCtx *ZSTD_createDCtx(void);
size_t ZSTD_freeDCtx(ZSTD_DCtx *dctx);
size_t ZSTD_DCtx_setParameter(ZSTD_DCtx *dctx, int param, int value);
size_t ZSTD_decompressStream(ZSTD_DCtx *zds, izs_out *output, izs_in *input);
unsigned ZSTD_isError(size_t code);
const char *ZSTD_getErrorName(size_t code);

// Go memory is passed as arguments only, never stored in C memory, as
// the cgo pointer rules want.
static size_t izs_decode(ZSTD_DCtx *d, void *dst, size_t dstSize, size_t *dstPos,
		const void *src, size_t srcSize, size_t *srcPos) {
	izs_out o = { dst, dstSize, *dstPos };
	izs_in i = { src, srcSize, *srcPos };
	size_t r = ZSTD_decompressStream(d, &o, &i);
	*dstPos = o.pos;
	*srcPos = i.pos;
	return r;
}
*/
import "C"

import (
	"bufio"
	"errors"
	"io"
	"math/bits"
	"unsafe"

	_ "github.com/DataDog/zstd" // links libzstd (its C sources) into the binary
)

// haveNativeZstd: this build has libzstd in-process.
const haveNativeZstd = true

const zstdWindowLogMax = 100 // ZSTD_d_windowLogMax

// nativeZstd decodes zstd with libzstd in this process, from the
// bufio.Reader's buffer straight into the caller's.
type nativeZstd struct {
	br *bufio.Reader
	d  *C.ZSTD_DCtx
	// inFrame: the last call ended inside a frame (libzstd returned a
	// non-zero hint), so an end of input now is a truncation.
	inFrame bool
	err     error
}

func newNativeZstd(br *bufio.Reader) (*nativeZstd, error) {
	d := C.ZSTD_createDCtx()
	if d == nil {
		return nil, errors.New("zstd: cannot allocate a decoder")
	}
	logMax := bits.Len64(uint64(ZstdMaxWindow)) - 1
	if r := C.ZSTD_DCtx_setParameter(d, zstdWindowLogMax, C.int(logMax)); C.ZSTD_isError(r) != 0 {
		C.ZSTD_freeDCtx(d)
		return nil, zstdError(r)
	}
	return &nativeZstd{br: br, d: d}, nil
}

func zstdError(r C.size_t) error { return errors.New(C.GoString(C.ZSTD_getErrorName(r))) }

func (z *nativeZstd) Read(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	if z.d == nil {
		return 0, errors.New("zstd: read after Close")
	}
	if len(p) == 0 {
		return 0, nil
	}
	var out C.size_t
	for stuck := 0; out == 0; {
		atEOF := false
		if z.br.Buffered() == 0 {
			if _, err := z.br.Peek(1); err == io.EOF {
				atEOF = true
			} else if err != nil {
				return 0, err // the input's own error: the caller tells it from damage
			}
		}
		if atEOF && !z.inFrame {
			z.err = io.EOF
			return 0, io.EOF
		}
		in, _ := z.br.Peek(z.br.Buffered())
		var used, r C.size_t
		if len(in) > 0 {
			r = C.izs_decode(z.d, unsafe.Pointer(&p[0]), C.size_t(len(p)), &out, unsafe.Pointer(&in[0]), C.size_t(len(in)), &used)
		} else {
			// the input ended inside a frame: flush what libzstd holds
			r = C.izs_decode(z.d, unsafe.Pointer(&p[0]), C.size_t(len(p)), &out, nil, 0, &used)
		}
		z.br.Discard(int(used))
		if C.ZSTD_isError(r) != 0 {
			z.err = zstdError(r)
			return int(out), z.err
		}
		z.inFrame = r != 0
		if used == 0 && out == 0 && !atEOF {
			// libzstd takes input or gives output whenever it can; a
			// call that does neither twice over would loop for ever
			if stuck++; stuck > 2 {
				z.err = io.ErrNoProgress
				return 0, z.err
			}
		}
		if atEOF && out == 0 {
			z.err = io.ErrUnexpectedEOF // reported as a truncation
			return 0, z.err
		}
	}
	return int(out), nil
}

func (z *nativeZstd) Close() {
	if z.d != nil {
		C.ZSTD_freeDCtx(z.d)
		z.d = nil
	}
}
