package remote

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// Timeouts bound every request a remote backend makes, so that a dead or
// black-holed server gives ErrUnavailable instead of hanging its caller.
// They apply to one request (one attempt); WithRetry bounds the attempts.
type Timeouts struct {
	// Connect bounds dialling and the TLS handshake. Default 10s.
	Connect time.Duration
	// Request bounds the wait from sending a request to its response
	// headers: a whole Stat, one page of a List, the opening of a
	// ReadRange. Default 15s.
	Request time.Duration
	// Idle bounds the wait for the next bytes of a body while the caller
	// is blocked in Read. A slow reader is not cut off by it: the clock
	// runs only inside Read (WithRetry's MaxElapsed, though, bounds the
	// whole read). Default 30s.
	Idle time.Duration
}

// DefaultTimeouts are the timeouts used for every zero field.
var DefaultTimeouts = Timeouts{Connect: 10 * time.Second, Request: 15 * time.Second, Idle: 30 * time.Second}

func (t Timeouts) withDefaults() Timeouts {
	if t.Connect <= 0 {
		t.Connect = DefaultTimeouts.Connect
	}
	if t.Request <= 0 {
		t.Request = DefaultTimeouts.Request
	}
	if t.Idle <= 0 {
		t.Idle = DefaultTimeouts.Idle
	}
	return t
}

// watchdog is a context that this package cancels itself, with an
// errTimedOut cause, when a phase it has armed takes too long. Unlike a
// context deadline it can be re-armed, so a long body read stays alive as
// long as bytes keep coming.
type watchdog struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	mu     sync.Mutex
	what   string
	d      time.Duration
}

func newWatchdog(parent context.Context) *watchdog {
	w := &watchdog{}
	w.ctx, w.cancel = context.WithCancelCause(parent)
	w.timer = time.AfterFunc(time.Hour, w.fire)
	w.timer.Stop()
	return w
}

func (w *watchdog) fire() {
	w.mu.Lock()
	cause := fmt.Errorf("%w: %s (%v)", errTimedOut, w.what, w.d)
	w.mu.Unlock()
	w.cancel(cause)
}

// arm starts (or restarts) the clock: unless disarmed within d, the
// context is cancelled with a cause that says what did not happen.
func (w *watchdog) arm(d time.Duration, what string) {
	w.mu.Lock()
	w.what, w.d = what, d
	w.mu.Unlock()
	w.timer.Reset(d)
}

func (w *watchdog) disarm() { w.timer.Stop() }

// stop releases the context; the watchdog cannot be used afterwards.
func (w *watchdog) stop() {
	w.timer.Stop()
	w.cancel(context.Canceled)
}

// guardedBody is a response body read under a watchdog: every Read is
// bounded by the idle timeout, failures are mapped onto this package's
// sentinels, and Close releases the request.
type guardedBody struct {
	w       *watchdog
	body    io.ReadCloser
	idle    time.Duration
	op, url string
	secrets []string
	once    sync.Once
}

func newGuardedBody(w *watchdog, body io.ReadCloser, idle time.Duration, op, url string, secrets []string) *guardedBody {
	return &guardedBody{w: w, body: body, idle: idle, op: op, url: url, secrets: secrets}
}

func (g *guardedBody) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	g.w.arm(g.idle, "no data received")
	n, err := g.body.Read(p)
	g.w.disarm()
	if err != nil && err != io.EOF {
		err = mapTransport(g.w.ctx, g.op, g.url, err, g.secrets)
	}
	return n, err
}

func (g *guardedBody) Close() error {
	g.once.Do(func() {
		g.body.Close()
		g.w.stop()
	})
	return nil
}

// limitedBody limits a body to n bytes and closes it.
func limitedBody(rc io.ReadCloser, n int64) io.ReadCloser {
	if n < 0 {
		return rc
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(rc, n), rc}
}

// emptyBody is what a read past the end or of zero bytes returns.
func emptyBody() io.ReadCloser { return io.NopCloser(eofReader{}) }

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
