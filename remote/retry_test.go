package remote

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// flaky fails its first calls with the given errors, then succeeds.
type flaky struct {
	mu    sync.Mutex
	errs  []error
	calls int
	// bodyErr, when set, is what the reader of a successful ReadRange
	// returns after its first bytes.
	bodyErr error
	// block makes each call wait for its context.
	block bool
}

func (f *flaky) next(ctx context.Context) error {
	f.mu.Lock()
	f.calls++
	var err error
	if len(f.errs) > 0 {
		err, f.errs = f.errs[0], f.errs[1:]
	}
	block := f.block
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return &opError{op: "stat", url: "x", err: ctx.Err(), reason: ctx.Err().Error()}
	}
	return err
}

func (f *flaky) count() int { f.mu.Lock(); defer f.mu.Unlock(); return f.calls }

func (f *flaky) Stat(ctx context.Context, url string) (ObjectInfo, error) {
	if err := f.next(ctx); err != nil {
		return ObjectInfo{}, err
	}
	return ObjectInfo{URL: url, Size: 3}, nil
}

func (f *flaky) List(ctx context.Context, url string) ([]ObjectInfo, error) {
	if err := f.next(ctx); err != nil {
		return nil, err
	}
	return []ObjectInfo{{URL: url + "/a"}}, nil
}

func (f *flaky) ReadRange(ctx context.Context, url string, off, n int64) (io.ReadCloser, error) {
	if err := f.next(ctx); err != nil {
		return nil, err
	}
	r := io.Reader(strings.NewReader("abc"))
	if f.bodyErr != nil {
		r = io.MultiReader(strings.NewReader("ab"), errReader{f.bodyErr})
	}
	return io.NopCloser(r), nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func unavailable() error {
	return newOpError("stat", "s3://b/k", ErrUnavailable, "HTTP 503", nil, nil)
}

var fast = RetryPolicy{MaxAttempts: 4, InitialBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, MaxElapsed: 5 * time.Second}

func TestRetrySucceedsAfterFailures(t *testing.T) {
	f := &flaky{errs: []error{unavailable(), unavailable(), unavailable()}}
	var seen []int
	p := fast
	p.OnRetry = func(op, url string, attempt int, err error) { seen = append(seen, attempt) }
	s := WithRetry(f, p)
	info, err := s.Stat(context.Background(), "s3://b/k")
	if err != nil || info.Size != 3 {
		t.Fatalf("Stat = %+v, %v", info, err)
	}
	if f.count() != 4 || len(seen) != 3 || seen[2] != 3 {
		t.Errorf("calls = %d, retries = %v", f.count(), seen)
	}
}

func TestRetryGivesUpAfterMaxAttempts(t *testing.T) {
	for _, n := range []int{1, 2, 4, 6} {
		f := &flaky{errs: []error{unavailable(), unavailable(), unavailable(), unavailable(), unavailable(), unavailable(), unavailable()}}
		p := fast
		p.MaxAttempts = n
		_, err := WithRetry(f, p).List(context.Background(), "s3://b/p")
		if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeBound) {
			t.Errorf("attempts %d: err = %v; want ErrUnavailable, not the time bound's", n, err)
		}
		if f.count() != n {
			t.Errorf("attempts %d: %d calls", n, f.count())
		}
	}
}

func TestRetryNeverRetriesFinalErrors(t *testing.T) {
	for _, e := range []error{
		newOpError("stat", "u", ErrNotExist, "", nil, nil),
		newOpError("stat", "u", ErrPermission, "", nil, nil),
		newOpError("list", "u", ErrNotSupported, "", nil, nil),
		newOpError("stat", "u", nil, "HTTP 400 Bad Request", nil, nil),
		errors.New("something else"),
	} {
		f := &flaky{errs: []error{e, e}}
		_, err := WithRetry(f, fast).Stat(context.Background(), "u")
		if err != e {
			t.Errorf("err = %v, want %v unchanged", err, e)
		}
		if f.count() != 1 {
			t.Errorf("%v: %d calls, want 1", e, f.count())
		}
		if _, err := WithRetry(f, fast).ReadRange(context.Background(), "u", 0, 1); err == nil && f.count() != 2 {
			t.Errorf("ReadRange retried a final error")
		}
	}
}

func TestRetryHonoursCancellation(t *testing.T) {
	f := &flaky{errs: make([]error, 100)}
	for i := range f.errs {
		f.errs[i] = unavailable()
	}
	p := RetryPolicy{MaxAttempts: 100, InitialBackoff: time.Second, MaxBackoff: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := WithRetry(f, p).Stat(ctx, "u")
	if !errors.Is(err, context.Canceled) || IsRetryable(err) {
		t.Errorf("err = %v", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("took %v", el)
	}
	// Already cancelled: one call at most, no retry.
	f2 := &flaky{errs: []error{unavailable(), unavailable()}}
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	WithRetry(f2, fast).Stat(ctx2, "u")
	if f2.count() > 1 {
		t.Errorf("cancelled context: %d calls", f2.count())
	}
}

func TestRetryOverallDeadline(t *testing.T) {
	// Each attempt hangs until its context ends: only MaxElapsed stops it.
	f := &flaky{block: true}
	p := RetryPolicy{MaxAttempts: 10, InitialBackoff: time.Millisecond, MaxElapsed: 300 * time.Millisecond}
	for name, op := range map[string]func(s Store) error{
		"stat": func(s Store) error { _, err := s.Stat(context.Background(), "u"); return err },
		"list": func(s Store) error { _, err := s.List(context.Background(), "u"); return err },
		"read": func(s Store) error { _, err := s.ReadRange(context.Background(), "u", 0, 1); return err },
	} {
		start := time.Now()
		err := op(WithRetry(f, p))
		el := time.Since(start)
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrTimeBound) {
			t.Errorf("%s: want ErrUnavailable and ErrTimeBound at the deadline, got %v", name, err)
		}
		if el < 250*time.Millisecond || el > 2*time.Second {
			t.Errorf("%s: took %v", name, el)
		}
	}
	// A backoff longer than what is left is not slept.
	f2 := &flaky{errs: []error{unavailable(), unavailable()}}
	p2 := RetryPolicy{MaxAttempts: 3, InitialBackoff: 5 * time.Second, MaxBackoff: 5 * time.Second, MaxElapsed: 500 * time.Millisecond}
	start := time.Now()
	_, err := WithRetry(f2, p2).Stat(context.Background(), "u")
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrTimeBound) || time.Since(start) > 400*time.Millisecond {
		t.Errorf("err = %v after %v", err, time.Since(start))
	}
}

func TestRetryReadRangeRetriesOnlyTheOpen(t *testing.T) {
	f := &flaky{errs: []error{unavailable()}, bodyErr: unavailable()}
	rc, err := WithRetry(f, fast).ReadRange(context.Background(), "u", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if string(b) != "ab" || !errors.Is(err, ErrUnavailable) {
		t.Errorf("read %q, %v; want the bytes so far and the mid-body error", b, err)
	}
	if f.count() != 2 {
		t.Errorf("%d calls, want 2 (one failed open, one good)", f.count())
	}
}

// The body of a read opened through WithRetry ends with MaxElapsed: the
// bound is for the whole read, body included.
func TestRetryReadBodyEndsWithTheDeadline(t *testing.T) {
	var got context.Context
	s := WithRetry(ctxStore{func(ctx context.Context) { got = ctx }}, RetryPolicy{MaxElapsed: 50 * time.Millisecond})
	rc, err := s.ReadRange(context.Background(), "u", 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	select {
	case <-got.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the read's context outlived its bound")
	}
	_, err = rc.Read(make([]byte, 1))
	if !errors.Is(err, ErrTimeBound) || !errors.Is(err, ErrUnavailable) || errors.Is(err, context.Canceled) {
		t.Errorf("read after the bound: %v; want ErrTimeBound and ErrUnavailable, not context.Canceled", err)
	}
	if err != nil && (!strings.Contains(err.Error(), "time bound") || !strings.Contains(err.Error(), "50ms")) {
		t.Errorf("message does not say the time bound elapsed: %v", err)
	}
}

// Close releases the read's context before the bound.
func TestRetryReadCloseReleases(t *testing.T) {
	var got context.Context
	s := WithRetry(ctxStore{func(ctx context.Context) { got = ctx }}, RetryPolicy{MaxElapsed: time.Hour})
	rc, err := s.ReadRange(context.Background(), "u", 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(rc); string(b) != "x" || err != nil {
		t.Errorf("read %q, %v", b, err)
	}
	if got.Err() != nil {
		t.Errorf("the read's context ended before Close: %v", context.Cause(got))
	}
	rc.Close()
	if got.Err() == nil {
		t.Error("Close did not release the read's context")
	}
}

// Reads under one WithReadBound context share the first one's bound: a
// resumption after it has run out fails at once, without a request.
func TestRetryReadBoundIsShared(t *testing.T) {
	calls := 0
	s := WithRetry(ctxStore{func(context.Context) { calls++ }}, RetryPolicy{MaxElapsed: 100 * time.Millisecond})
	ctx := WithReadBound(context.Background())
	rc, err := s.ReadRange(ctx, "u", 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	time.Sleep(150 * time.Millisecond)
	_, err = s.ReadRange(ctx, "u", 0, 1)
	if !errors.Is(err, ErrTimeBound) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("second read under a spent bound: %v; want ErrTimeBound", err)
	}
	if calls != 1 {
		t.Errorf("%d requests, want 1", calls)
	}
	// Another context has a bound of its own.
	rc, err = s.ReadRange(WithReadBound(context.Background()), "u", 0, 1)
	if err != nil {
		t.Fatalf("a fresh bound: %v", err)
	}
	rc.Close()
}

type ctxStore struct{ seen func(context.Context) }

func (c ctxStore) Stat(ctx context.Context, url string) (ObjectInfo, error) { return ObjectInfo{}, nil }
func (c ctxStore) List(ctx context.Context, url string) ([]ObjectInfo, error) {
	return nil, nil
}
func (c ctxStore) ReadRange(ctx context.Context, url string, off, n int64) (io.ReadCloser, error) {
	c.seen(ctx)
	return io.NopCloser(strings.NewReader("x")), nil
}

func TestBackoffBounds(t *testing.T) {
	p := RetryPolicy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second}.withDefaults()
	nominal := []time.Duration{100, 200, 400, 800, 1600, 2000, 2000}
	for i, n := range nominal {
		n *= time.Millisecond
		for k := 0; k < 50; k++ {
			d := p.backoff(i + 1)
			if d < n/2 || d > n {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", i+1, d, n/2, n)
			}
		}
	}
	d := DefaultRetryPolicy
	if d.MaxAttempts != 4 || d.InitialBackoff != 100*time.Millisecond || d.MaxBackoff != 2*time.Second || d.MaxElapsed != 30*time.Second {
		t.Errorf("defaults = %+v", d)
	}
	if z := (RetryPolicy{}).withDefaults(); z.MaxAttempts != 4 || z.MaxElapsed != 30*time.Second {
		t.Errorf("zero policy = %+v", z)
	}
}
