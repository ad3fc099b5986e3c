package remote

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"strings"
	"syscall"
)

// ErrNotSupported is returned by an operation a backend cannot do at all,
// such as listing over plain HTTP. It is never retried.
var ErrNotSupported = errors.New("operation not supported")

// opError is the error every remote backend returns: it names the operation
// and the (redacted) URL, matches one of this package's sentinels through
// errors.Is, and keeps the underlying error for errors.As.
type opError struct {
	op     string // "stat", "read", "list"
	url    string // already redacted
	kind   error  // ErrNotExist, ErrPermission, ErrUnavailable, ErrNotSupported or nil
	reason string // already redacted
	err    error  // underlying error, may be nil
}

func (e *opError) Error() string {
	var b strings.Builder
	b.WriteString(e.op)
	b.WriteByte(' ')
	b.WriteString(e.url)
	b.WriteString(": ")
	if e.kind != nil {
		b.WriteString(e.kind.Error())
		if e.reason != "" {
			b.WriteString(" (")
			b.WriteString(e.reason)
			b.WriteByte(')')
		}
	} else {
		b.WriteString(e.reason)
	}
	return b.String()
}

// Unwrap gives both the sentinel and the underlying error, so errors.Is
// matches the sentinel and errors.As still finds e.g. a *url.Error.
// Errors.Is also matches context.Canceled when the caller cancelled.
func (e *opError) Unwrap() []error {
	var out []error
	if e.kind != nil {
		out = append(out, e.kind)
	}
	if e.err != nil {
		out = append(out, e.err)
	}
	return out
}

// newOpError builds an opError, redacting the URL, the reason and any
// literal secrets the backend knows about.
func newOpError(op, url string, kind error, reason string, err error, secrets []string) error {
	return &opError{
		op:     op,
		url:    RedactURL(url),
		kind:   kind,
		reason: Redact(reason, secrets...),
		err:    redactedErr(err, secrets),
	}
}

// redactedErr hides an underlying error's text (which may carry a URL with
// credentials) behind a redacted copy, while keeping it for errors.Is/As.
func redactedErr(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	return &redacted{msg: Redact(err.Error(), secrets...), err: err}
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

// statusKind maps an HTTP status code onto a sentinel. ok is false for
// codes that are not failures of a known class (the caller then reports the
// status as a plain error, which is not retried).
func statusKind(code int) (kind error, ok bool) {
	switch {
	case code == http.StatusNotFound, code == http.StatusGone:
		return ErrNotExist, true
	case code == http.StatusUnauthorized, code == http.StatusForbidden:
		return ErrPermission, true
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests,
		code >= 500:
		return ErrUnavailable, true
	}
	return nil, false
}

// errTimedOut is the cancellation cause set by this package's own
// per-request watchdogs; see timeouts.go.
var errTimedOut = errors.New("request timed out")

// transportKind classifies an error from the network or the client library
// that is not an HTTP status: the caller's cancellation stays what it is
// (kind nil: never retried), a watchdog timeout, a refused or reset
// connection, DNS failure or a truncated body is ErrUnavailable.
func transportKind(ctx context.Context, err error) error {
	if ctx != nil && ctx.Err() != nil && !errors.Is(context.Cause(ctx), errTimedOut) {
		return nil // the caller gave up: report as is
	}
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	switch {
	case errors.Is(err, errTimedOut),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled), // our own watchdog cancelled
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &oe), errors.As(err, &de):
		return ErrUnavailable
	case errors.As(err, &ne) && ne.Timeout():
		return ErrUnavailable
	}
	// net/http reports a server that closed the connection early as a
	// plain error with this text, and io.ErrUnexpectedEOF for short bodies.
	msg := err.Error()
	if strings.Contains(msg, "EOF") || strings.Contains(msg, "connection reset") ||
		strings.Contains(msg, "server closed") || strings.Contains(msg, "broken pipe") ||
		strings.Contains(msg, "timeout") {
		return ErrUnavailable
	}
	return nil
}

// transportReason describes a transport failure briefly, preferring the
// watchdog's own wording.
func transportReason(ctx context.Context, err error) string {
	if ctx != nil && errors.Is(context.Cause(ctx), errTimedOut) {
		return context.Cause(ctx).Error()
	}
	// SDKs wrap the request error in layers of their own; the *url.Error
	// inside names the request and what went wrong, which is what a user
	// needs.
	var ue *neturl.Error
	if errors.As(err, &ue) {
		return ue.Error()
	}
	return err.Error()
}

// mapTransport turns a network/library error into an opError.
func mapTransport(ctx context.Context, op, url string, err error, secrets []string) error {
	if err == nil {
		return nil
	}
	var oe *opError
	if errors.As(err, &oe) {
		return err
	}
	kind := transportKind(ctx, err)
	return newOpError(op, url, kind, transportReason(ctx, err), err, secrets)
}

// IsRetryable reports whether err is of the class WithRetry retries: the
// backend could not be reached or kept failing, and the caller did not
// cancel.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrNotExist) || errors.Is(err, ErrPermission) || errors.Is(err, ErrNotSupported) ||
		errors.Is(err, ErrChanged) {
		return false
	}
	return errors.Is(err, ErrUnavailable)
}
