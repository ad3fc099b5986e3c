package decomp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
)

// zerosGz is `head -c 50M /dev/zero | gzip`: 50 MiB that compress to 50 kB.
func zerosGz(t *testing.T) []byte {
	t.Helper()
	needTool(t, "gzip")
	needTool(t, "head")
	out, err := exec.Command("sh", "-c", "head -c 50M /dev/zero | gzip").Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// budget is a Reserve that grants up to limit bytes in all.
type budget struct {
	mu      sync.Mutex
	limit   int64
	granted int64
	calls   int
}

func (b *budget) reserve(have, want int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	if have > b.granted {
		return fmt.Errorf("the file holds %d bytes, more than the %d granted", have, b.granted)
	}
	if want > b.limit {
		return fmt.Errorf("decompressed data of test exceeds the cache limit of %d bytes", b.limit)
	}
	b.granted = max(b.granted, want)
	return nil
}

func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// TestSpoolLimit: a stream that decompresses to more than Reserve grants
// stops there: the spool file never holds more than the limit, readers get
// the bytes before it and then an error matching ErrSpoolFull (not
// ErrCorrupt, not an errno), every time, and Fill fails the same way.
func TestSpoolLimit(t *testing.T) {
	comp := zerosGz(t)
	const limit = 20<<20 + 12345 // not a multiple of the step or the chunk
	sp, b, dir := openBudgeted(t, comp, limit)
	defer sp.Close()
	buf := make([]byte, 1<<20)
	var off int64
	var rerr error
	for {
		n, err := sp.ReadAt(buf, off)
		if !bytes.Equal(buf[:n], make([]byte, n)) {
			t.Fatalf("wrong bytes at %d", off)
		}
		off += int64(n)
		if d := dirBytes(t, dir); d > limit {
			t.Fatalf("the spool directory holds %d bytes, over the limit %d", d, limit)
		}
		if err != nil {
			rerr = err
			break
		}
	}
	var errno syscall.Errno
	if !errors.Is(rerr, ErrSpoolFull) || errors.Is(rerr, ErrCorrupt) || errors.As(rerr, &errno) {
		t.Fatalf("read at %d: %v, want ErrSpoolFull", off, rerr)
	}
	if off > limit || off < limit-(1<<20) {
		t.Errorf("%d bytes read before the error, want about the limit %d", off, limit)
	}
	if d := dirBytes(t, dir); d > limit {
		t.Errorf("the spool directory holds %d bytes, over the limit %d", d, limit)
	}
	if _, err := sp.ReadAt(buf, off); !errors.Is(err, ErrSpoolFull) {
		t.Errorf("second read past the limit: %v", err)
	}
	if n, err := sp.ReadAt(buf[:100], 1000); n != 100 || err != nil {
		t.Errorf("read before the limit after the error: %d, %v", n, err)
	}
	if _, err := sp.Fill(context.Background()); !errors.Is(err, ErrSpoolFull) {
		t.Errorf("Fill: %v, want ErrSpoolFull", err)
	}
	if _, ok := sp.Complete(); ok {
		t.Error("a spool stopped at its limit is complete")
	}
	if b.calls > 2*limit/ReserveStep+16 {
		t.Errorf("Reserve called %d times for %d bytes", b.calls, limit)
	}
	sp.Close()
	if d := dirBytes(t, dir); d != 0 {
		t.Errorf("%d bytes left in the spool directory after Close", d)
	}
}

// openBudgeted opens a spool of the gzip stream comp in a directory of its
// own, its growth granted by a budget of limit bytes.
func openBudgeted(t *testing.T, comp []byte, limit int64) (*Spool, *budget, string) {
	t.Helper()
	b := &budget{limit: limit}
	dir := t.TempDir()
	sp, err := OpenSpool(SpoolConfig{Dir: dir, Key: "zeros", ExpectedSize: -1, Reserve: b.reserve,
		Open: func(context.Context) (io.ReadCloser, error) { return NewReader(Gzip, bytes.NewReader(comp)), nil }})
	if err != nil {
		t.Fatal(err)
	}
	return sp, b, dir
}

// TestSpoolUnderLimit: a stream that fits is not affected: every byte,
// complete, persisted, and Reserve asked for no more than the limit.
func TestSpoolUnderLimit(t *testing.T) {
	comp := zerosGz(t)
	for _, limit := range []int64{50 << 20, 64 << 20} { // exactly the size, and more
		sp, b, dir := openBudgeted(t, comp, limit)
		n, err := sp.Fill(context.Background())
		if err != nil || n != 50<<20 {
			t.Fatalf("limit %d: Fill = %d, %v", limit, n, err)
		}
		if _, ok := sp.Complete(); !ok {
			t.Errorf("limit %d: not complete", limit)
		}
		if b.granted > limit {
			t.Errorf("limit %d: %d granted", limit, b.granted)
		}
		sp.Close()
		if n, ok := LookupSpool(dir, "zeros"); !ok || n != 50<<20 {
			t.Errorf("limit %d: the complete spool is not kept (%d, %v)", limit, n, ok)
		}
	}
	// With an expected size the last request is no bigger than the data.
	b := &budget{limit: 1 << 40}
	sp, err := OpenSpool(SpoolConfig{Dir: t.TempDir(), Key: "zeros", ExpectedSize: 50 << 20, Reserve: b.reserve,
		Open: func(context.Context) (io.ReadCloser, error) { return NewReader(Gzip, bytes.NewReader(comp)), nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if _, err := sp.Fill(context.Background()); err != nil || b.granted != 50<<20 {
		t.Errorf("expected size: %v, %d granted", err, b.granted)
	}
}
