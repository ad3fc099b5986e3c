package decomp

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzZstd feeds damaged zstd streams to libzstd through nativeZstd's
// loop (the Go decoder is fuzzed upstream): no panic, no hang, a failure
// matches ErrCorrupt, and a small stream it accepts gives what the Go
// decoder gives when that accepts it too.
func FuzzZstd(f *testing.F) {
	if !haveNativeZstd {
		f.Skip("built without cgo: there is no libzstd to fuzz")
	}
	data := csvData(20_000, 5)
	for _, args := range [][]string{{"-q", "-c"}, {"-q", "-c", "-19"}, {"-q", "-c", "--no-check"}} {
		z := run(f, data, "zstd", args...)
		f.Add(z)
		f.Add(append(bytes.Clone(z), z...))
		f.Add(z[:len(z)/2])
	}
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Fuzz(func(t *testing.T, in []byte) {
		decode := func(native bool) ([]byte, error) {
			old := NativeZstd
			NativeZstd = native
			defer func() { NativeZstd = old }()
			r := NewReader(Zstd, bytes.NewReader(in))
			defer r.Close()
			// bounded: a few bytes may claim a huge output
			return io.ReadAll(io.LimitReader(r, 4<<20))
		}
		nb, nerr := decode(true)
		if nerr != nil {
			if !errors.Is(nerr, ErrCorrupt) {
				t.Fatalf("libzstd: %v does not match ErrCorrupt", nerr)
			}
			return
		}
		if len(nb) > 256<<10 {
			return // the Go decoder is slow to set up for big windows under the fuzzer
		}
		if gob, gerr := decode(false); gerr == nil && !bytes.Equal(gob, nb) {
			t.Fatalf("both decoders accept the stream but give %d and %d bytes, not the same", len(gob), len(nb))
		}
	})
}
