package metrics

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/intakefs/intakefs/cache"
	ifs "github.com/intakefs/intakefs/fs"
)

// statsKeys are the fields of stats.json as the engine writes it: the
// JSON of cache.Stats, and SpoolBytes.
func statsKeys(t *testing.T) []string {
	b, err := json.Marshal(cache.Stats{})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	keys := []string{"SpoolBytes"}
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// Every field of stats.json has a metric, and every metric a field: a
// counter added to cache.Stats must be exported too.
func TestStatsCoverEveryField(t *testing.T) {
	byKey := map[string]*statMetric{}
	for _, m := range statMetrics {
		byKey[m.key] = m
	}
	keys := statsKeys(t)
	for _, k := range keys {
		if byKey[k] == nil {
			t.Errorf("stats.json field %s has no metric", k)
		}
		delete(byKey, k)
	}
	for k := range byKey {
		t.Errorf("metric for %s, which stats.json does not have", k)
	}
	for _, m := range statMetrics {
		if !strings.HasPrefix(m.name, "intakefs_") {
			t.Errorf("%s: want the intakefs_ prefix", m.name)
		}
		if total := strings.HasSuffix(m.name, "_total"); total != (m.kind == counter) {
			t.Errorf("%s: a counter's name ends in _total, and only a counter's", m.name)
		}
	}
	// the registry refuses two metrics of one name
	if err := prometheus.NewRegistry().Register(NewStats(nil)); err != nil {
		t.Fatal(err)
	}
}

func TestStatsCollect(t *testing.T) {
	src := `{"RemoteRequests": 7, "RemoteBytes": 1024, "CachedBytes": 4096,
		"MaxBytes": -1, "SpoolBytes": 12, "Unknown": 3, "Text": "x"}`
	s := NewStats(func() ([]byte, error) { return []byte(src), nil })
	want := `
# HELP intakefs_remote_requests_total Ranged reads made of remote stores, readahead and cache warming included. (stats.json: RemoteRequests)
# TYPE intakefs_remote_requests_total counter
intakefs_remote_requests_total 7
# HELP intakefs_cache_bytes Bytes of blocks in the disk cache. (stats.json: CachedBytes)
# TYPE intakefs_cache_bytes gauge
intakefs_cache_bytes 4096
# HELP intakefs_cache_max_bytes The cache's size limit, --cache-max-size (negative: none). (stats.json: MaxBytes)
# TYPE intakefs_cache_max_bytes gauge
intakefs_cache_max_bytes -1
# HELP intakefs_spool_bytes Bytes of complete decompressed spools on disk; they share --cache-max-size with the blocks. (stats.json: SpoolBytes)
# TYPE intakefs_spool_bytes gauge
intakefs_spool_bytes 12
`
	if err := testutil.CollectAndCompare(s, strings.NewReader(want),
		"intakefs_remote_requests_total", "intakefs_cache_bytes", "intakefs_cache_max_bytes", "intakefs_spool_bytes"); err != nil {
		t.Error(err)
	}
	// fields stats.json lacks are left out, not shown as zero; unknown
	// and non-numeric ones are ignored
	if n := testutil.CollectAndCount(s); n != 5 {
		t.Errorf("%d metrics from 5 known numeric fields", n)
	}
}

// A stats.json that cannot be read fails its own metrics only: the
// scrape still has the rest.
func TestStatsErrorKeepsTheRest(t *testing.T) {
	reg := prometheus.NewRegistry()
	fuse := NewFUSE()
	fuse.Observe(0, 0, time.Millisecond)
	reg.MustRegister(NewStats(func() ([]byte, error) { return nil, errors.New("no stats here") }), fuse)
	mfs, err := reg.Gather()
	if err == nil || !strings.Contains(err.Error(), "no stats here") {
		t.Errorf("gather error %v, want the stats source's", err)
	}
	if len(mfs) == 0 {
		t.Errorf("no metrics gathered beside the failed stats")
	}
}

func TestFUSECounts(t *testing.T) {
	f := NewFUSE()
	lookup, read := op(t, "lookup"), op(t, "read")
	for range 3 {
		f.Observe(read, 0, 2*time.Millisecond)
	}
	f.Observe(lookup, syscall.ENOENT, 20*time.Microsecond)
	f.Observe(lookup, syscall.ENOENT, 20*time.Microsecond)
	f.Observe(lookup, 0, 20*time.Microsecond)
	f.Observe(read, syscall.Errno(4095), time.Second)

	for _, c := range []struct {
		c    prometheus.Collector
		want float64
	}{
		{f.requests.WithLabelValues("read"), 4},
		{f.requests.WithLabelValues("lookup"), 3},
		{f.errors.WithLabelValues("lookup", "ENOENT"), 2},
		{f.errors.WithLabelValues("read", "4095"), 1},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%v: %v, want %v", c.c.(prometheus.Metric).Desc(), got, c.want)
		}
	}
	h := histogram(t, f, "read")
	if h.GetSampleCount() != 4 {
		t.Errorf("read latency: %d samples, want 4", h.GetSampleCount())
	}
	for _, b := range h.GetBucket() {
		want := uint64(0)
		switch {
		case b.GetUpperBound() >= 1:
			want = 4
		case b.GetUpperBound() >= 0.002:
			want = 3
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("read latency ≤ %g: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	// operations never requested have no series
	if n := testutil.CollectAndCount(f, "intakefs_fuse_requests_total"); n != 2 {
		t.Errorf("%d request series, want 2 (lookup and read)", n)
	}
}

// Requests come on many goroutines at once, the first of an operation
// too: none is lost. (Run with -race.)
func TestFUSEConcurrent(t *testing.T) {
	f := NewFUSE()
	read := op(t, "read")
	const workers, each = 8, 1000
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range each {
				f.Observe(read, syscall.Errno(i%2)*syscall.EIO, time.Microsecond)
			}
		})
	}
	wg.Wait()
	if got := testutil.ToFloat64(f.requests.WithLabelValues("read")); got != workers*each {
		t.Errorf("%v requests, want %d", got, workers*each)
	}
	if got := testutil.ToFloat64(f.errors.WithLabelValues("read", "EIO")); got != workers*each/2 {
		t.Errorf("%v errors, want %d", got, workers*each/2)
	}
}

func op(t *testing.T, name string) ifs.Op {
	for o := range ifs.NumOps {
		if o.String() == name {
			return o
		}
	}
	t.Fatalf("no operation %q", name)
	return 0
}

func histogram(t *testing.T, f *FUSE, opName string) *dto.Histogram {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(f)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "intakefs_fuse_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == opName {
					return m.GetHistogram()
				}
			}
		}
	}
	t.Fatalf("no latency histogram for %s", opName)
	return nil
}

// The server serves the registry at /metrics in the text format, nothing
// else, and stops on Close.
func TestServer(t *testing.T) {
	s, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fuse := NewFUSE()
	fuse.Observe(op(t, "getattr"), 0, time.Microsecond)
	reg := NewRegistry(func() ([]byte, error) { return []byte(`{"Reads": 5}`), nil }, fuse)
	s.Serve(reg, slog.New(slog.DiscardHandler))
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/metrics") {
		t.Fatalf("URL %s", s.URL())
	}
	resp, err := http.Get(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s\n%s", s.URL(), resp.Status, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("not the text format: %v\n%s", err, body)
	}
	for _, name := range []string{"intakefs_cache_reads_total", "intakefs_fuse_requests_total",
		"intakefs_fuse_request_duration_seconds", "go_goroutines", "process_cpu_seconds_total"} {
		if mfs[name] == nil {
			t.Errorf("no %s in:\n%s", name, body)
		}
	}
	base := strings.TrimSuffix(s.URL(), "/metrics")
	for _, path := range []string{"/", "/debug/pprof/", "/metrics/x"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404: only /metrics is served", path, resp.Status)
		}
	}
	addr := strings.TrimPrefix(base, "http://")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Close", addr)
	}
	if err := s.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

func TestListenTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if s, err := Listen(ln.Addr().String()); err == nil {
		s.Close()
		t.Fatalf("Listen on %s, which is taken, succeeded", ln.Addr())
	}
}
