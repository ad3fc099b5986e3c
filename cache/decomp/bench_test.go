package decomp

import (
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The benchmarks decompress ~64 MB of CSV-like data compressed by the
// real tools at their default levels. The compressed files are kept in
// $TMPDIR/intakefs-decomp-bench/ between runs (xz -6 of 64 MB takes a
// minute). Compare with the tools on the same files:
//
//	go test -run '^$' -bench Decompress ./cache/decomp/
//	time gzip -dc $TMPDIR/intakefs-decomp-bench/data.csv.gz > /dev/null   (and zstd, xz, bzip2, lz4)

const benchSize = 64 << 20

var (
	benchOnce sync.Once
	benchData []byte
	benchDir  string
)

func benchInput(b *testing.B, c Compression) []byte {
	b.Helper()
	benchOnce.Do(func() {
		benchData = csvData(benchSize, 2024)
		benchDir = filepath.Join(os.TempDir(), "intakefs-decomp-bench")
		os.MkdirAll(benchDir, 0o755)
		p := filepath.Join(benchDir, "data.csv")
		if old, err := os.ReadFile(p); err != nil || !bytes.Equal(old, benchData) {
			os.WriteFile(p, benchData, 0o644)
			for _, ext := range []string{".gz", ".bz2", ".xz", ".zst", ".lz4"} {
				os.Remove(p + ext)
			}
		}
	})
	var tool, ext string
	var args []string
	switch c {
	case Gzip:
		tool, ext, args = "gzip", ".gz", []string{"-k", "-f"}
	case Bzip2:
		tool, ext, args = "bzip2", ".bz2", []string{"-k", "-f"}
	case XZ:
		tool, ext, args = "xz", ".xz", []string{"-k", "-f", "-T1"}
	case Zstd:
		tool, ext, args = "zstd", ".zst", []string{"-q", "-k", "-f"}
	case LZ4:
		tool, ext, args = "lz4", ".lz4", []string{"-q", "-k", "-f"}
	}
	p := filepath.Join(benchDir, "data.csv")
	if _, err := os.Stat(p + ext); err != nil {
		needTool(b, tool)
		if c == LZ4 {
			runIn(b, benchDir, tool, append(args, "data.csv", "data.csv.lz4")...)
		} else {
			runIn(b, benchDir, tool, append(args, "data.csv")...)
		}
	}
	return readFile(b, p+ext)
}

func benchDecompress(b *testing.B, c Compression) {
	comp := benchInput(b, c)
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(benchData)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := NewReader(c, bytes.NewReader(comp))
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf)
		r.Close()
		if err != nil || n != int64(len(benchData)) {
			b.Fatalf("%d bytes, %v", n, err)
		}
	}
	b.ReportMetric(float64(len(benchData))/float64(len(comp)), "ratio")
}

func BenchmarkDecompressGzip(b *testing.B)  { benchDecompress(b, Gzip) }
func BenchmarkDecompressBzip2(b *testing.B) { benchDecompress(b, Bzip2) }
func BenchmarkDecompressXZ(b *testing.B)    { benchDecompress(b, XZ) }

// The same through ExternalXZ (a child xz -dc).
func BenchmarkDecompressXZExternal(b *testing.B) {
	ExternalXZ = needTool(b, "xz")
	defer func() { ExternalXZ = "" }()
	benchDecompress(b, XZ)
}
func BenchmarkDecompressLZ4(b *testing.B) { benchDecompress(b, LZ4) }

func BenchmarkDecompressZstd(b *testing.B) {
	for _, conc := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			old := zstdConcurrency
			zstdConcurrency = conc
			defer func() { zstdConcurrency = old }()
			benchDecompress(b, Zstd)
		})
	}
}

// The standard library's gzip, for comparison with klauspost/compress's.
func BenchmarkDecompressGzipStdlib(b *testing.B) {
	comp := benchInput(b, Gzip)
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(benchData)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := stdgzip.NewReader(bytes.NewReader(comp))
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, buf)
		if err != nil || n != int64(len(benchData)) {
			b.Fatalf("%d bytes, %v", n, err)
		}
	}
}

// Decompressing into a Spool: the decoder plus writing the spool file
// (the fsync and rename that follow, off the readers' path, are not
// timed).
func BenchmarkSpoolFillGzip(b *testing.B) { benchSpool(b, Gzip) }
func BenchmarkSpoolFillZstd(b *testing.B) { benchSpool(b, Zstd) }

func benchSpool(b *testing.B, c Compression) {
	comp := benchInput(b, c)
	b.SetBytes(int64(len(benchData)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		sp, err := OpenSpool(SpoolConfig{Dir: dir, Key: "bench", ExpectedSize: -1,
			Open: func(context.Context) (io.ReadCloser, error) { return NewReader(c, bytes.NewReader(comp)), nil }})
		if err != nil {
			b.Fatal(err)
		}
		if n, err := sp.Fill(context.Background()); err != nil || n != int64(len(benchData)) {
			b.Fatalf("%d, %v", n, err)
		}
		b.StopTimer()
		sp.Close()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}
