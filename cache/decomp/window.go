package decomp

import (
	"sync"
	"unsafe"
)

// SpoolDirect makes spools write their files with O_DIRECT where the
// filesystem allows it (tests turn it off to cover the other path).
//
// Why: a stream decompressed for a reader is mostly read once, right
// behind the decoder. Through the page cache each byte was copied into a
// freshly allocated page, which is the most expensive step of the whole
// read on a VM whose memory the host backs lazily (about 2 s per GB of
// first-touched pages here, more than decoding zstd); and the pages then
// crowd out other cached data. Written directly, the bytes go from our
// buffer to the disk; readers close behind the decoder are served from
// the last few chunks kept in memory (the window), the rest from the file.
var SpoolDirect = true

// directAlign is the alignment O_DIRECT wants of the buffer's address,
// the file offset and the length (the logical block size; 4096 covers
// 512-byte devices too).
const directAlign = 4096

// windowChunks is how many of the last decompressed chunks a spool being
// written keeps in memory for its readers; readahead stays within them.
const windowChunks = 8

// chunk is one buffer of the window: bytes [off, off+n) of the stream.
type chunk struct {
	// mu guards off and n. buf's bytes belong to the producer while n
	// is 0 (its decodeAhead goroutine sets n to 0 and fills buf with no
	// lock held; its writing loop then writes buf and publishes off and
	// n) and to readers while n > 0: a reader copies from buf only with
	// mu read-locked and n > 0. Readers only TryRLock, and read the file
	// when it is busy, so none waits for the producer.
	mu  sync.RWMutex
	off int64
	n   int
	buf []byte // directAlign-aligned
}

// newWindow makes k chunks of size bytes each, aligned for O_DIRECT.
func newWindow(k, size int) []*chunk {
	w := make([]*chunk, k)
	for i := range w {
		b := make([]byte, size+directAlign)
		a := int(uintptr(unsafe.Pointer(&b[0])) & (directAlign - 1))
		if a != 0 {
			a = directAlign - a
		}
		w[i] = &chunk{buf: b[a : a+size : a+size]}
	}
	return w
}

// fromWindow copies into p what a chunk of w holds of the stream at off,
// and says how much (0: not in memory, or being refilled).
func fromWindow(w []*chunk, p []byte, off int64) int {
	for _, c := range w {
		if !c.mu.TryRLock() {
			continue
		}
		if c.n > 0 && off >= c.off && off < c.off+int64(c.n) {
			k := copy(p, c.buf[off-c.off:c.n])
			c.mu.RUnlock()
			return k
		}
		c.mu.RUnlock()
	}
	return 0
}
