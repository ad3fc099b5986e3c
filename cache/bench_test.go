package cache

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
)

// The benchmarks read a 64 MiB object from the in-memory fake store, so
// they measure the cache's own cost: cold (every block fetched from the
// fake and written to disk), warm (blocks on disk, verified by this
// process), and reopened (a new Cache on the same directory, so each block
// is checked against its crc32c on first read).

const benchSize = 64 * mib

func benchSetup(b *testing.B) (*fakeStore, []byte) {
	f := newFake()
	data := randBytes(99, benchSize)
	return f, data
}

func seqRead(b *testing.B, h *handle, size int64, n int) {
	buf := make([]byte, n)
	for off := int64(0); off < size; off += int64(n) {
		if _, err := h.ReadAt(buf[:min(int64(n), size-off)], off); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSequentialRead(b *testing.B) {
	f, data := benchSetup(b)
	info := f.put("mem://bench", data, "e")
	b.Run("cold", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			b.StopTimer()
			c, err := New(Options{Dir: b.TempDir(), MinFreeBytes: -1})
			if err != nil {
				b.Fatal(err)
			}
			h := openT(b, c, f, info)
			b.StartTimer()
			seqRead(b, h, benchSize, 128*kib)
			h.Close()
			b.StopTimer()
			c.Close()
			b.StartTimer()
		}
	})
	dir := b.TempDir()
	c, err := New(Options{Dir: dir, MinFreeBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Warm(context.Background(), f, info, nil); err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{128 * kib, mib} {
		b.Run("warm-"+sizeName(n), func(b *testing.B) {
			b.SetBytes(benchSize)
			for b.Loop() {
				h := openT(b, c, f, info)
				seqRead(b, h, benchSize, n)
				h.Close()
			}
		})
	}
	c.Close()
	b.Run("reopened-128K", func(b *testing.B) {
		b.SetBytes(benchSize)
		for b.Loop() {
			b.StopTimer()
			c, err := New(Options{Dir: dir, MinFreeBytes: -1})
			if err != nil {
				b.Fatal(err)
			}
			h := openT(b, c, f, info)
			b.StartTimer()
			seqRead(b, h, benchSize, 128*kib)
			b.StopTimer()
			h.Close()
			c.Close()
			b.StartTimer()
		}
	})
}

func BenchmarkRandomRead(b *testing.B) {
	f, data := benchSetup(b)
	info := f.put("mem://bench", data, "e")
	b.Run("cold-4K", func(b *testing.B) {
		// Every read in a block not fetched yet: one block fetched per read.
		c := newTestCache(b, Options{})
		h := openT(b, c, f, info)
		defer h.Close()
		buf := make([]byte, 4*kib)
		r := rand.New(rand.NewPCG(1, 1))
		perm := r.Perm(benchSize / mib)
		b.SetBytes(4 * kib)
		i := 0
		for b.Loop() {
			if i == len(perm) {
				b.StopTimer()
				h.Close()
				c.Clear("")
				h = openT(b, c, f, info)
				i = 0
				b.StartTimer()
			}
			off := int64(perm[i])*mib + r.Int64N(mib-4*kib)
			i++
			if _, err := h.ReadAt(buf, off); err != nil {
				b.Fatal(err)
			}
		}
	})
	c := newTestCache(b, Options{})
	if err := c.Warm(context.Background(), f, info, nil); err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{4 * kib, 128 * kib} {
		b.Run("warm-"+sizeName(n), func(b *testing.B) {
			h := openT(b, c, f, info)
			defer h.Close()
			buf := make([]byte, n)
			r := rand.New(rand.NewPCG(2, 2))
			b.SetBytes(int64(n))
			for b.Loop() {
				off := r.Int64N(benchSize - int64(n))
				if _, err := h.ReadAt(buf, off); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("warm-4K-parallel", func(b *testing.B) {
		b.SetBytes(4 * kib)
		b.RunParallel(func(pb *testing.PB) {
			h := openT(b, c, f, info)
			defer h.Close()
			buf := make([]byte, 4*kib)
			r := rand.New(rand.NewPCG(rand.Uint64(), 3))
			for pb.Next() {
				off := r.Int64N(benchSize - 4*kib)
				if _, err := h.ReadAt(buf, off); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func sizeName(n int) string {
	if n >= mib {
		return strconv.Itoa(n/mib) + "M"
	}
	return strconv.Itoa(n/kib) + "K"
}
