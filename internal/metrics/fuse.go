package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	ifs "github.com/intakefs/intakefs/fs"
)

// latencyBuckets span a GETATTR answered from memory (tens of µs) to a
// read that waits for a slow remote store (seconds).
var latencyBuckets = []float64{1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, .01, .05, .1, .5, 1, 5, 10}

// FUSE counts the requests a mount serves (an fs.Observer) and exports
// them. An operation's series appear with its first request, so a scrape
// shows the few operations a read-only mount gets, not forty of zeros.
type FUSE struct {
	requests  *prometheus.CounterVec
	errors    *prometheus.CounterVec
	durations *prometheus.HistogramVec

	// ops holds each operation's children once made: the vectors find a
	// child under a lock, which a request must not wait for.
	ops [ifs.NumOps]atomic.Pointer[opMetrics]
	// errs holds the error counters by errKey, likewise.
	errs sync.Map
}

type opMetrics struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

type errKey struct {
	op    ifs.Op
	errno syscall.Errno
}

// NewFUSE makes the FUSE request metrics, to be registered and handed to
// the mount as its fs.Config.Observer.
func NewFUSE() *FUSE {
	return &FUSE{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intakefs_fuse_requests_total",
			Help: "FUSE requests served, by operation (forget counts inodes forgotten).",
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intakefs_fuse_request_errors_total",
			Help: "FUSE requests answered with an error, by operation and errno (a lookup of a missing name is ENOENT).",
		}, []string{"op", "errno"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "intakefs_fuse_request_duration_seconds",
			Help:    "Time the daemon took to answer FUSE requests, by operation.",
			Buckets: latencyBuckets,
		}, []string{"op"}),
	}
}

var _ ifs.Observer = (*FUSE)(nil)

// Observe counts one request: on the hot path an atomic load and the
// client's atomic adds; a lock only the first time an operation, or an
// operation's errno, is seen.
func (f *FUSE) Observe(op ifs.Op, errno syscall.Errno, took time.Duration) {
	m := f.ops[op].Load()
	if m == nil {
		m = &opMetrics{requests: f.requests.WithLabelValues(op.String()), duration: f.durations.WithLabelValues(op.String())}
		// a racing first request makes the same children: the vectors
		// give one child per label value
		f.ops[op].Store(m)
	}
	m.requests.Inc()
	m.duration.Observe(took.Seconds())
	if errno != 0 {
		f.errorCounter(op, errno).Inc()
	}
}

func (f *FUSE) errorCounter(op ifs.Op, errno syscall.Errno) prometheus.Counter {
	k := errKey{op, errno}
	if c, ok := f.errs.Load(k); ok {
		return c.(prometheus.Counter)
	}
	c := f.errors.WithLabelValues(op.String(), errnoName(errno))
	f.errs.Store(k, c)
	return c
}

// errnoName is the errno's C name (ENOENT), which is what a reader of
// the metrics looks for; a number where it has none.
func errnoName(e syscall.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return strconv.Itoa(int(e))
}

func (f *FUSE) Describe(ch chan<- *prometheus.Desc) {
	f.requests.Describe(ch)
	f.errors.Describe(ch)
	f.durations.Describe(ch)
}

func (f *FUSE) Collect(ch chan<- prometheus.Metric) {
	f.requests.Collect(ch)
	f.errors.Collect(ch)
	f.durations.Collect(ch)
}
