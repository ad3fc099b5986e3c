package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"
)

// RetryPolicy bounds WithRetry. Zero fields take the defaults of
// DefaultRetryPolicy.
type RetryPolicy struct {
	// MaxAttempts is the number of tries, the first included (default 4;
	// 1 disables retrying).
	MaxAttempts int
	// InitialBackoff is the wait before the first retry (default 100ms);
	// each further wait doubles, up to MaxBackoff (default 2s). Every wait
	// is jittered to between half and all of its nominal length.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// MaxElapsed bounds one call, all attempts and waits included
	// (default 30s). For ReadRange and ReadVersion it bounds the read's
	// progress, the body to its end included: the read fails when
	// MaxElapsed passes without 64 KiB more of its body (the idle timeout
	// alone lets a server that drips a byte at a time hold a reader for
	// ever). Reads made under one WithReadBound context share one bound.
	MaxElapsed time.Duration
	// OnRetry, when set, is called before each retry (attempt is the
	// attempt that failed, from 1); for logging and tests.
	OnRetry func(op, url string, attempt int, err error)
}

// DefaultRetryPolicy is 4 attempts, 100ms→2s backoff, 30s in all.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 4, InitialBackoff: 100 * time.Millisecond,
	MaxBackoff: 2 * time.Second, MaxElapsed: 30 * time.Second}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultRetryPolicy.MaxAttempts
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = DefaultRetryPolicy.InitialBackoff
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultRetryPolicy.MaxBackoff
	}
	if p.MaxBackoff < p.InitialBackoff {
		p.MaxBackoff = p.InitialBackoff
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = DefaultRetryPolicy.MaxElapsed
	}
	return p
}

// backoff is the jittered wait after the given failed attempt (from 1).
func (p RetryPolicy) backoff(attempt int) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < attempt && d < p.MaxBackoff; i++ {
		d *= 2
	}
	if d > p.MaxBackoff {
		d = p.MaxBackoff
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(d-half)+1))
}

// WithRetry wraps a store so that failures of the ErrUnavailable class
// (unreachable, timed out, 5xx, throttled) are retried with exponential
// backoff and jitter, within p.MaxAttempts and p.MaxElapsed. Other
// failures (ErrNotExist, ErrPermission, ErrNotSupported, a bad request)
// and the caller's cancellation are returned at once. ReadRange retries
// only the opening of the read; an error in the middle of a body is
// returned to the caller, who asks again for the remaining range (under
// the same WithReadBound context, so that the resumption stays within
// the first read's bound). A read whose bound runs out fails with an
// error matching ErrUnavailable and ErrTimeBound. The wrapper keeps
// ReaderAtOpener when s has it.
func WithRetry(s Store, p RetryPolicy) Store {
	r := &retryStore{s: s, p: p.withDefaults()}
	if ra, ok := s.(ReaderAtOpener); ok {
		return &retryStoreRA{retryStore: r, ra: ra}
	}
	return r
}

type retryStore struct {
	s Store
	p RetryPolicy
}

type retryStoreRA struct {
	*retryStore
	ra ReaderAtOpener
}

func (r *retryStoreRA) OpenReaderAt(ctx context.Context, url string) (ReaderAtCloser, error) {
	return r.ra.OpenReaderAt(ctx, url)
}

// Unwrap returns the wrapped store.
func (r *retryStore) Unwrap() Store { return r.s }

var errRetryDeadline = errors.New("retry deadline exceeded")

// ErrTimeBound is in the chain of an error, besides ErrUnavailable, when
// RetryPolicy.MaxElapsed ran out before the call (a read: before its
// body's end) finished. Asking again for the rest of a read under the same
// WithReadBound context fails at once.
var ErrTimeBound = errors.New("time bound elapsed")

type readBoundKey struct{}

// readBound is the deadline the reads under one WithReadBound context
// share; zero until the first of them opens. Each progressUnit of body
// delivered moves it to MaxElapsed from then.
type readBound struct {
	mu       sync.Mutex
	deadline time.Time
}

func (b *readBound) from(d time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.deadline.IsZero() {
		b.deadline = d
	}
	return b.deadline
}

func (b *readBound) get() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.deadline
}

func (b *readBound) extend(d time.Time) {
	b.mu.Lock()
	if d.After(b.deadline) {
		b.deadline = d
	}
	b.mu.Unlock()
}

// progressUnit is how much of a body must arrive within MaxElapsed for
// the read's bound to move on. The bound is against a server that stalls
// or drips a byte at a time, not against a slow link: a 16 MiB readahead
// request over a link of a few Mbit/s takes longer than 30 s, and keeps
// going as long as each 64 KiB comes within the bound (about 2 KiB/s at
// the default 30 s).
const progressUnit = 64 << 10

// WithReadBound returns a context under which every ReadRange and
// ReadVersion of a WithRetry store shares one time bound, MaxElapsed from
// the first of them: a caller that resumes a read cut off mid-body makes
// the resumptions under it, so that resuming cannot stretch what a reader
// waits for its bytes.
func WithReadBound(ctx context.Context) context.Context {
	return context.WithValue(ctx, readBoundKey{}, &readBound{})
}

// run calls fn until it succeeds, fails for good, or the policy is
// exhausted. ctx is the deadline-bound context fn must use.
func (r *retryStore) run(ctx, dctx context.Context, deadline time.Time, op, url string, fn func(ctx context.Context) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = fn(dctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err // the caller gave up
		}
		if errors.Is(err, ErrNotExist) || errors.Is(err, ErrPermission) || errors.Is(err, ErrNotSupported) ||
			errors.Is(err, ErrChanged) {
			return err
		}
		if dctx.Err() != nil {
			return r.exhausted(op, url, attempt, err, true)
		}
		if !IsRetryable(err) {
			return err
		}
		if attempt >= r.p.MaxAttempts {
			return r.exhausted(op, url, attempt, err, false)
		}
		wait := r.p.backoff(attempt)
		if time.Until(deadline) < wait {
			return r.exhausted(op, url, attempt, err, true)
		}
		if r.p.OnRetry != nil {
			r.p.OnRetry(op, url, attempt, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-dctx.Done():
			t.Stop()
			if ctx.Err() != nil {
				return fmt.Errorf("%w (while retrying: %v)", context.Cause(ctx), err)
			}
			return r.exhausted(op, url, attempt, err, true)
		case <-t.C:
		}
	}
}

func (r *retryStore) exhausted(op, url string, attempts int, last error, deadline bool) error {
	tries := fmt.Sprintf("%d attempts", attempts)
	if attempts == 1 {
		tries = "1 attempt"
	}
	why := "gave up after " + tries
	if deadline {
		why = fmt.Sprintf("gave up after %s within %v", tries, r.p.MaxElapsed)
	}
	var err error
	if errors.Is(last, ErrUnavailable) {
		err = fmt.Errorf("%w; %s", last, why)
	} else {
		// The deadline cut an attempt short: the backend saw a cancelled
		// context, which is no failure class of its own.
		err = &opError{op: op, url: RedactURL(url), kind: ErrUnavailable, reason: why, err: last}
	}
	if deadline {
		return timeBoundError{err}
	}
	return err
}

// timeBoundError adds ErrTimeBound to an error's chain, not to its text.
type timeBoundError struct{ error }

func (e timeBoundError) Unwrap() []error { return []error{e.error, ErrTimeBound} }

func (r *retryStore) Stat(ctx context.Context, url string) (ObjectInfo, error) {
	deadline := time.Now().Add(r.p.MaxElapsed)
	dctx, cancel := context.WithDeadlineCause(ctx, deadline, errRetryDeadline)
	defer cancel()
	var info ObjectInfo
	err := r.run(ctx, dctx, deadline, "stat", url, func(c context.Context) error {
		var err error
		info, err = r.s.Stat(c, url)
		return err
	})
	return info, err
}

func (r *retryStore) List(ctx context.Context, url string) ([]ObjectInfo, error) {
	deadline := time.Now().Add(r.p.MaxElapsed)
	dctx, cancel := context.WithDeadlineCause(ctx, deadline, errRetryDeadline)
	defer cancel()
	var out []ObjectInfo
	err := r.run(ctx, dctx, deadline, "list", url, func(c context.Context) error {
		var err error
		out, err = r.s.List(c, url)
		return err
	})
	return out, err
}

func (r *retryStore) ReadRange(ctx context.Context, url string, off, length int64) (io.ReadCloser, error) {
	return r.open(ctx, url, func(c context.Context) (io.ReadCloser, error) {
		return r.s.ReadRange(c, url, off, length)
	})
}

// ReadVersion implements VersionReader through the wrapped store's, or as
// a plain ReadRange when it has none (see the ReadVersion function).
func (r *retryStore) ReadVersion(ctx context.Context, info ObjectInfo, off, length int64) (io.ReadCloser, error) {
	return r.open(ctx, info.URL, func(c context.Context) (io.ReadCloser, error) {
		return ReadVersion(c, r.s, info, off, length)
	})
}

func (r *retryStore) open(ctx context.Context, url string, fn func(context.Context) (io.ReadCloser, error)) (io.ReadCloser, error) {
	b, ok := ctx.Value(readBoundKey{}).(*readBound)
	if !ok {
		b = &readBound{}
	}
	deadline := b.from(time.Now().Add(r.p.MaxElapsed))
	if !time.Now().Before(deadline) {
		return nil, r.boundElapsed(url)
	}
	// The body reads under dctx too, so the bound ends the read wherever
	// it is: opening, retrying, or in the middle of the body. The timer
	// checks the bound when it fires, since progress may have moved it.
	dctx, cancel := context.WithCancelCause(ctx)
	w := &boundWatch{b: b, cancel: cancel}
	w.mu.Lock()
	w.t = time.AfterFunc(time.Until(deadline), w.fire)
	w.mu.Unlock()
	var rc io.ReadCloser
	err := r.run(ctx, dctx, deadline, "read", url, func(c context.Context) error {
		var err error
		rc, err = fn(c)
		return err
	})
	if err != nil {
		w.stop()
		return nil, err
	}
	return &boundedBody{rc: rc, ctx: ctx, dctx: dctx, w: w, r: r, url: url}, nil
}

// boundWatch cancels a read when its bound has passed.
type boundWatch struct {
	b      *readBound
	cancel context.CancelCauseFunc
	mu     sync.Mutex // guards t and stopped
	t      *time.Timer
	// stopped: the read is closed; fire must not re-arm.
	stopped bool
}

func (w *boundWatch) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if left := time.Until(w.b.get()); left > 0 {
		w.t.Reset(left)
		return
	}
	w.cancel(errRetryDeadline)
}

func (w *boundWatch) stop() {
	w.mu.Lock()
	w.stopped = true
	w.t.Stop()
	w.mu.Unlock()
	w.cancel(context.Canceled)
}

// boundElapsed is the error of a read whose time bound ran out.
func (r *retryStore) boundElapsed(url string) error {
	return &opError{op: "read", url: RedactURL(url), kind: ErrUnavailable, err: ErrTimeBound,
		reason: fmt.Sprintf("gave up: the read did not deliver 64 KiB within its time bound of %v (--retry-max-time)", r.p.MaxElapsed)}
}

// boundedBody is a body read under its read's bound, which each
// progressUnit delivered moves on; Close releases the request.
type boundedBody struct {
	rc        io.ReadCloser
	ctx, dctx context.Context
	w         *boundWatch
	r         *retryStore
	url       string
	// since counts the bytes delivered since the bound last moved.
	since int
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.elapsed() {
		return 0, b.r.boundElapsed(b.url)
	}
	n, err := b.rc.Read(p)
	if b.since += n; b.since >= progressUnit {
		b.since = 0
		b.w.b.extend(time.Now().Add(b.r.p.MaxElapsed))
	}
	if err != nil && err != io.EOF && b.elapsed() {
		// The backend saw its request cancelled; what happened is the bound.
		err = b.r.boundElapsed(b.url)
	}
	return n, err
}

// elapsed reports whether the bound ended the read (and not the caller,
// who gets its own cancellation).
func (b *boundedBody) elapsed() bool {
	return b.ctx.Err() == nil && errors.Is(context.Cause(b.dctx), errRetryDeadline)
}

func (b *boundedBody) Close() error {
	err := b.rc.Close()
	b.w.stop()
	return err
}
