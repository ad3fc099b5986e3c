package decomp

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// readSpoolFile gives the file's bytes for any range, whether the page
// cache holds them or not (then they are read with O_DIRECT), at any
// alignment, up to and at the end of the file.
func TestReadSpoolFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	data := make([]byte, 5<<20+123)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dr := openDirect(p)
	if dr == nil {
		t.Fatalf("%s: O_DIRECT refused", p)
	}
	defer dr.Close()
	drop := func() {
		f.Sync()
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
	}
	n := int64(len(data))
	cases := [][2]int64{{0, 1 << 20}, {1, 1 << 20}, {4095, 3 << 20}, {n - 100, 100}, {n - (1 << 20) - 7, 1<<20 + 7}, {n - 70000, 80000}, {12345, 100}}
	for i := 0; i < 40; i++ {
		off := r.Int64N(n)
		cases = append(cases, [2]int64{off, 1 + r.Int64N(3<<20)})
	}
	for i, c := range cases {
		if i%2 == 0 {
			drop() // O_DIRECT for all of it
		} // else: partly cached by the reads before
		off, l := c[0], c[1]
		buf := make([]byte, l)
		k, err := readSpoolFile(f, dr, buf, off)
		end := min(off+l, n)
		if int64(k) != end-off {
			t.Fatalf("read %d at %d: got %d bytes (%v), want %d", l, off, k, err, end-off)
		}
		if end < off+l && err != io.EOF {
			t.Errorf("read %d at %d past the end: %v, want io.EOF", l, off, err)
		}
		if end == off+l && err != nil {
			t.Errorf("read %d at %d: %v", l, off, err)
		}
		if !bytes.Equal(buf[:k], data[off:end]) {
			t.Fatalf("read %d at %d: wrong bytes", l, off)
		}
	}
}
