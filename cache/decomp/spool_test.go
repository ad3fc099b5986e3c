package decomp

import (
	"bufio"
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func sampleNamed(tb testing.TB, ss []sample, name string) sample {
	for _, s := range ss {
		if s.name == name {
			return s
		}
	}
	tb.Fatalf("no sample %s", name)
	return sample{}
}

// opener counts how often the stream is started.
func opener(c Compression, comp io.ReaderAt, size int64, calls *atomic.Int32) func(context.Context) (io.ReadCloser, error) {
	return func(context.Context) (io.ReadCloser, error) {
		calls.Add(1)
		return NewReader(c, io.NewSectionReader(comp, 0, size)), nil
	}
}

func checkRead(t *testing.T, sp *Spool, data []byte, off int64, n int) {
	t.Helper()
	buf := make([]byte, n)
	k, err := sp.ReadAt(buf, off)
	want := 0
	if off < int64(len(data)) {
		want = int(min(int64(n), int64(len(data))-off))
	}
	if k != want {
		t.Fatalf("ReadAt(%d, %d) = %d, %v; want %d bytes", n, off, k, err, want)
	}
	if want < n && err != io.EOF {
		t.Fatalf("ReadAt(%d, %d) short without io.EOF: %v", n, off, err)
	}
	if want == n && err != nil && err != io.EOF {
		t.Fatalf("ReadAt(%d, %d): %v", n, off, err)
	}
	if k > 0 && !bytes.Equal(buf[:k], data[off:off+int64(k)]) {
		t.Fatalf("ReadAt(%d, %d): wrong bytes (first difference at +%d)", n, off, firstDiff(buf[:k], data[off:off+int64(k)]))
	}
}

// Random offsets, backwards seeks, reads past the end, every format.
func TestSpoolRandomAccess(t *testing.T) {
	for _, s := range makeSamples(t) {
		if len(s.data) == 0 {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			dir := t.TempDir()
			var calls atomic.Int32
			var sizes []int64
			var mu sync.Mutex
			sp, err := OpenSpool(SpoolConfig{Dir: dir, Key: s.name, ExpectedSize: -1,
				ChunkSize: 64 << 10, Readahead: 128 << 10,
				Open:   opener(s.c, bytes.NewReader(s.comp), int64(len(s.comp)), &calls),
				OnSize: func(n int64) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := sp.Size(); ok {
				t.Fatal("size known before decompression")
			}
			n := int64(len(s.data))
			r := rand.New(rand.NewPCG(uint64(n), 5))
			// A read near the end first: everything before is decompressed to get there.
			checkRead(t, sp, s.data, n-1000, 4000)
			// Then backwards, and random.
			checkRead(t, sp, s.data, 0, 100)
			for i := 0; i < 200; i++ {
				checkRead(t, sp, s.data, r.Int64N(n+100), 1+r.IntN(200_000))
			}
			checkRead(t, sp, s.data, n, 10)
			checkRead(t, sp, s.data, n+12345, 10)
			if got, ok := sp.Size(); !ok || got != n {
				t.Fatalf("Size() = %d, %v; want %d", got, ok, n)
			}
			select {
			case <-sp.SizeKnown():
			case <-time.After(10 * time.Second):
				t.Fatal("SizeKnown not closed")
			}
			if calls.Load() != 1 {
				t.Fatalf("decompression started %d times", calls.Load())
			}
			waitPersisted(t, sp)
			if err := sp.Close(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			if len(sizes) != 1 || sizes[0] != n {
				t.Fatalf("OnSize calls: %v", sizes)
			}
			mu.Unlock()
			// A later open (a later daemon) reuses the complete spool.
			if got, ok := LookupSpool(dir, s.name); !ok || got != n {
				t.Fatalf("LookupSpool = %d, %v", got, ok)
			}
			sp2, err := OpenSpool(SpoolConfig{Dir: dir, Key: s.name, ExpectedSize: n,
				Open: func(context.Context) (io.ReadCloser, error) {
					t.Error("a complete spool must not be decompressed again")
					return nil, errors.New("no")
				}})
			if err != nil {
				t.Fatal(err)
			}
			defer sp2.Close()
			if got, ok := sp2.Size(); !ok || got != n {
				t.Fatalf("reopened Size() = %d, %v", got, ok)
			}
			checkRead(t, sp2, s.data, n/2, 1000)
			if p, ok := sp2.Complete(); !ok || p == "" {
				t.Fatal("reopened spool not complete")
			} else if !bytes.Equal(readFile(t, p), s.data) {
				t.Fatal("the complete spool file is not the data")
			}
		})
	}
}

func waitPersisted(t *testing.T, sp *Spool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if p, ok := sp.Complete(); ok && p != "" {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("spool not persisted: %v", sp.PersistErr())
}

// Many readers at once share one decompression and all get the right
// bytes (run with -race).
func TestSpoolConcurrentReaders(t *testing.T) {
	s := sampleNamed(t, makeSamples(t), "multi.csv.gz")
	var calls atomic.Int32
	sp, err := OpenSpool(SpoolConfig{Dir: t.TempDir(), Key: "k", ExpectedSize: -1, ChunkSize: 32 << 10, Readahead: 64 << 10,
		Open: opener(s.c, bytes.NewReader(s.comp), int64(len(s.comp)), &calls)})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	n := int64(len(s.data))
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 9))
			buf := make([]byte, 300_000)
			for i := 0; i < 60; i++ {
				off := r.Int64N(n)
				l := 1 + r.IntN(len(buf))
				if g == 0 { // one sequential reader
					off = int64(i) * n / 60
				}
				k, err := sp.ReadAt(buf[:l], off)
				if err != nil && err != io.EOF {
					errs <- err
					return
				}
				if !bytes.Equal(buf[:k], s.data[off:off+int64(k)]) {
					errs <- fmt.Errorf("reader %d: wrong bytes at %d", g, off)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if calls.Load() != 1 {
		t.Fatalf("decompression started %d times", calls.Load())
	}
}

// flakyReaderAt fails once, at the first read at or past failAt.
type flakyReaderAt struct {
	r      io.ReaderAt
	failAt int64
	failed atomic.Bool
}

var errFlaky = errors.New("remote unavailable (test)")

func (f *flakyReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.failAt && !f.failed.Swap(true) {
		return 0, errFlaky
	}
	if end := off + int64(len(p)); off < f.failAt && end > f.failAt && !f.failed.Load() {
		p = p[:f.failAt-off]      // stop short, so that the next read is the failing one
		return f.r.ReadAt(p, off) // short, without an error: fine for a Read
	}
	return f.r.ReadAt(p, off)
}

// An I/O error of the input reaches the readers waiting then (not as
// ErrCorrupt); the next read starts over and gets the data.
func TestSpoolTransientError(t *testing.T) {
	s := sampleNamed(t, makeSamples(t), "single.csv.gz")
	src := &flakyReaderAt{r: bytes.NewReader(s.comp), failAt: int64(len(s.comp)) / 2}
	if len(s.comp) < 1000 {
		t.Fatal("sample too small")
	}
	var calls atomic.Int32
	sp, err := OpenSpool(SpoolConfig{Dir: t.TempDir(), Key: "k", ExpectedSize: -1, Readahead: -1,
		Open: func(context.Context) (io.ReadCloser, error) {
			calls.Add(1)
			return NewReader(s.c, io.NewSectionReader(src, 0, int64(len(s.comp)))), nil
		}})
	if err == nil {
		defer sp.Close()
	} else {
		t.Fatal(err)
	}
	n := int64(len(s.data))
	buf := make([]byte, 100)
	_, err = sp.ReadAt(buf, n-100)
	if !errors.Is(err, errFlaky) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("read past the failure: %v, want the input's error", err)
	}
	checkRead(t, sp, s.data, n-100, 100)
	checkRead(t, sp, s.data, 0, 100)
	if calls.Load() != 2 {
		t.Fatalf("Open called %d times, want 2", calls.Load())
	}
	if got, err := sp.Fill(context.Background()); err != nil || got != n {
		t.Fatalf("Fill = %d, %v", got, err)
	}
}

// With the size known beforehand, reads at the end need not decompress
// everything; a stream of another size is damage.
func TestSpoolExpectedSize(t *testing.T) {
	s := sampleNamed(t, makeSamples(t), "single.csv.xz")
	n := int64(len(s.data))
	var calls atomic.Int32
	open := opener(s.c, bytes.NewReader(s.comp), int64(len(s.comp)), &calls)
	sp, err := OpenSpool(SpoolConfig{Dir: t.TempDir(), Key: "k", ExpectedSize: n, Readahead: 1 << 10, ChunkSize: 16 << 10, Open: open})
	if err != nil {
		t.Fatal(err)
	}
	checkRead(t, sp, s.data, n, 100)
	checkRead(t, sp, s.data, n+10, 100)
	checkRead(t, sp, s.data, 0, 1000)
	if sp.Spooled() >= n {
		t.Fatalf("reads at the end decompressed everything (%d)", sp.Spooled())
	}
	// Reading exactly to the expected end completes the spool.
	checkRead(t, sp, s.data, n-10, 10)
	select {
	case <-sp.SizeKnown():
	case <-time.After(10 * time.Second):
		t.Fatal("a spool read to its expected size does not complete")
	}
	waitPersisted(t, sp)
	sp.Close()
	for _, wrong := range []int64{n - 1, n + 1, n / 2} {
		sp, err := OpenSpool(SpoolConfig{Dir: t.TempDir(), Key: "k", ExpectedSize: wrong, Open: open})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sp.Fill(context.Background()); !errors.Is(err, ErrCorrupt) {
			t.Errorf("expected size %d (really %d): Fill: %v, want ErrCorrupt", wrong, n, err)
		}
		buf := make([]byte, 10)
		if _, err := sp.ReadAt(buf, wrong-5); !errors.Is(err, ErrCorrupt) && wrong < n {
			t.Errorf("expected size %d: read at the end: %v", wrong, err)
		}
		sp.Close()
	}
}

// Close: waiting readers return, later reads fail, an incomplete spool
// leaves nothing behind.
func TestSpoolClose(t *testing.T) {
	block := make(chan struct{})
	sp, err := OpenSpool(SpoolConfig{Dir: t.TempDir(), Key: "k", ExpectedSize: -1,
		Open: func(ctx context.Context) (io.ReadCloser, error) {
			return io.NopCloser(&blockingReader{ctx: ctx, block: block}), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	dir := sp.cfg.Dir
	done := make(chan error)
	go func() {
		_, err := sp.ReadAt(make([]byte, 10), 1000)
		done <- err
	}()
	// A read with a deadline gives up.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := sp.ReadAtContext(ctx, make([]byte, 10), 5000); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadAtContext: %v", err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a read cut by Close succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reader still waiting after Close")
	}
	if _, err := sp.ReadAt(make([]byte, 1), 0); err == nil {
		t.Fatal("read after Close")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
}

// blockingReader gives a few bytes, then blocks until its context ends.
type blockingReader struct {
	ctx   context.Context
	block chan struct{}
	n     int
}

func (b *blockingReader) Read(p []byte) (int, error) {
	if b.n < 100 {
		k := min(len(p), 100-b.n)
		b.n += k
		return k, nil
	}
	select {
	case <-b.block:
		return 0, io.EOF
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	}
}

// A daemon killed in the middle of a decompression leaves a partial spool
// that is never trusted and that CleanDir removes.
func TestSpoolCrash(t *testing.T) {
	if os.Getenv("DECOMP_CRASH_DIR") != "" {
		crashHelper()
		return
	}
	s := sampleNamed(t, makeSamples(t), "single.csv.bz2")
	dir := t.TempDir()
	comp := writeFile(t, dir, "in.bz2", s.comp)
	spools := filepath.Join(dir, "spool")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolCrash$", "-test.count=1")
	cmd.Env = append(os.Environ(), "DECOMP_CRASH_DIR="+spools, "DECOMP_CRASH_IN="+comp)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "ready") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q", line)
	}
	// A live writer's partial spool is kept.
	if err := CleanDir(spools); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(spools); len(ents) != 1 || !strings.Contains(ents[0].Name(), partialMarker) {
		t.Fatalf("before the kill: %v", ents)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if _, ok := LookupSpool(spools, "crash"); ok {
		t.Fatal("a killed decompression left a trusted spool")
	}
	if err := CleanDir(spools); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(spools); len(ents) != 0 {
		t.Fatalf("after CleanDir: %v", ents)
	}
	// And the next daemon decompresses it afresh, correctly.
	f, _ := os.Open(comp)
	defer f.Close()
	var calls atomic.Int32
	sp, err := OpenSpool(SpoolConfig{Dir: spools, Key: "crash", ExpectedSize: -1, Open: opener(Bzip2, f, int64(len(s.comp)), &calls)})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	checkRead(t, sp, s.data, int64(len(s.data))-10, 10)
}

func crashHelper() {
	f, err := os.Open(os.Getenv("DECOMP_CRASH_IN"))
	if err != nil {
		panic(err)
	}
	fi, _ := f.Stat()
	var calls atomic.Int32
	sp, err := OpenSpool(SpoolConfig{Dir: os.Getenv("DECOMP_CRASH_DIR"), Key: "crash", ExpectedSize: -1, Readahead: 1 << 10,
		Open: opener(Bzip2, f, fi.Size(), &calls)})
	if err != nil {
		panic(err)
	}
	if _, err := sp.ReadAt(make([]byte, 1000), 500_000); err != nil {
		panic(err)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
}

// Both ways of writing a spool file, O_DIRECT (which the test directory's
// filesystem takes, if it takes it at all) and through the page cache,
// give the same bytes to random, concurrent and resumed readers.
func TestSpoolWritePaths(t *testing.T) {
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprint("direct=", direct), func(t *testing.T) {
			old := SpoolDirect
			SpoolDirect = direct
			defer func() { SpoolDirect = old }()
			dir := t.TempDir()
			probe := filepath.Join(dir, "probe")
			if err := os.WriteFile(probe, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			canDirect := false
			if f := openDirect(probe); f != nil {
				canDirect = true
				f.Close()
			}
			sp, err := OpenSpool(SpoolConfig{Dir: dir, Key: "k", ExpectedSize: -1,
				Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(nil)), nil }})
			if err != nil {
				t.Fatal(err)
			}
			if sp.direct != canDirect {
				t.Errorf("spool writes with O_DIRECT: %v; the directory takes it: %v", sp.direct, canDirect)
			}
			sp.Close()
			t.Run("random", TestSpoolRandomAccess)
			t.Run("concurrent", TestSpoolConcurrentReaders)
			t.Run("transient", TestSpoolTransientError)
			t.Run("expected", TestSpoolExpectedSize)
		})
	}
}

// A small stream of known size (a zip member) gets a window sized to it,
// not megabytes, and a stream that is longer or shorter than its size is
// still damage.
func TestSpoolSmallStream(t *testing.T) {
	for _, size := range []int{1, 10, 4096, 5000, 300 << 10} {
		data := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		var gz bytes.Buffer
		w := stdgzip.NewWriter(&gz)
		w.Write(data)
		w.Close()
		var calls atomic.Int32
		open := opener(Gzip, bytes.NewReader(gz.Bytes()), int64(gz.Len()), &calls)
		sp, err := OpenSpool(SpoolConfig{Dir: t.TempDir(), Key: "k", ExpectedSize: int64(size), Open: open})
		if err != nil {
			t.Fatal(err)
		}
		if c := sp.cfg.ChunkSize; c < size || c >= size+directAlign || c%directAlign != 0 {
			t.Errorf("size %d: chunk size %d, want the size rounded up to %d", size, c, directAlign)
		}
		checkRead(t, sp, data, 0, size+100)
		checkRead(t, sp, data, int64(size/2), 7)
		if n, err := sp.Fill(context.Background()); err != nil || n != int64(size) {
			t.Errorf("size %d: Fill %d, %v", size, n, err)
		}
		sp.Close()
		for _, wrong := range []int64{int64(size) - 1, int64(size) + 1} {
			if wrong < 0 {
				continue
			}
			sp, err := OpenSpool(SpoolConfig{Dir: t.TempDir(), Key: "k", ExpectedSize: wrong, Open: open})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sp.Fill(context.Background()); !errors.Is(err, ErrCorrupt) {
				t.Errorf("size %d recorded as %d: Fill: %v, want ErrCorrupt", size, wrong, err)
			}
			sp.Close()
		}
	}
}
