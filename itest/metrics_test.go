package itest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricsCatalog is a catalog of one CSV served over HTTP on loopback,
// so that reading it goes through the block cache and moves the counters
// of stats.json (local files bypass the cache).
func metricsCatalog(t *testing.T) (catalog string, data []byte) {
	t.Helper()
	srv := startFileServer(t)
	data = csvOf(11, 300<<10)
	srv.put(t, "m/data.csv", data)
	catalog = filepath.Join(realTempDir(t), "catalog.yaml")
	writeAll(t, catalog, fmt.Appendf(nil, "sources:\n  remote:\n    driver: csv\n    args:\n      urlpath: '%s/m/data.csv'\n      storage_options: {headers: {Authorization: %q}}\n",
		srv.URL, "Bearer "+srv.Token))
	return catalog, data
}

var rxMetricsURL = regexp.MustCompile(`metrics at (http://\S+/metrics)`)

// metricsURL is the address the daemon logged for its metrics.
func metricsURL(t *testing.T, log func() string) string {
	t.Helper()
	deadline := time.Now().Add(mountTimeout)
	for {
		if m := rxMetricsURL.FindStringSubmatch(log()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no \"metrics at http://…/metrics\" line in the log:\n%s", log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scraped is one scrape of /metrics, parsed.
type scraped map[string]*dto.MetricFamily

// scrape gets url and parses it as the Prometheus text format, strictly
// (classic metric and label names).
func scrape(t *testing.T, url string) scraped {
	t.Helper()
	c := http.Client{Timeout: ioTimeout}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s, %v\n%s", url, resp.Status, err, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("scrape: Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("scrape: not the Prometheus text format: %v\n%s", err, body)
	}
	return mfs
}

// value is the value of the series of family name with the labels given
// as pairs (a histogram's: its sample count); 0 when there is none, as
// for a FUSE operation not requested yet.
func (s scraped) value(name string, labels ...string) float64 {
	mf := s[name]
	if mf == nil {
		return 0
	}
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := len(have) == len(labels)/2
		for i := 0; match && i+1 < len(labels); i += 2 {
			match = have[labels[i]] == labels[i+1]
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

var rxStatsKey = regexp.MustCompile(`\(stats\.json: (\w+)\)$`)

// statsFamilies maps the fields of stats.json to the families that
// export them, as their HELP says.
func (s scraped) statsFamilies() map[string]string {
	out := map[string]string{}
	for name, mf := range s {
		if m := rxStatsKey.FindStringSubmatch(mf.GetHelp()); m != nil {
			out[m[1]] = name
		}
	}
	return out
}

func readStats(t *testing.T, d *daemon) map[string]float64 {
	t.Helper()
	var st map[string]float64
	if err := json.Unmarshal(readFile(t, d.path(".catalog/stats.json")), &st); err != nil {
		t.Fatalf("stats.json: %v", err)
	}
	return st
}

// TestMetrics: --metrics-addr 127.0.0.1:0 serves Prometheus metrics at the
// address it logs: FUSE requests by operation, stats.json's counters with
// the values the file shows, the Go runtime's and the process's; nothing
// else is served there, and the port closes at unmount.
func TestMetrics(t *testing.T) {
	catalog, data := metricsCatalog(t)
	// pprof on a port of its own, to show it stays off the metrics port
	pprofAddr := deadAddr(t)
	t.Setenv("INTAKEFS_PPROF", pprofAddr)
	d := mount(t, catalog, "--metrics-addr", "127.0.0.1:0")
	url := metricsURL(t, d.Output)
	if !strings.HasPrefix(url, "http://127.0.0.1:") || strings.HasSuffix(url, ":0/metrics") {
		t.Fatalf("logged %s: want the port the system chose on 127.0.0.1", url)
	}

	before := scrape(t, url)
	if b := readFile(t, d.path("remote.csv")); !bytesEqual(t, b, data) {
		return
	}
	if _, err := os.Stat(d.path("nosuch.csv")); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("stat of a missing name: %v, want ENOENT", err)
	}
	after := scrape(t, url)

	for _, op := range []string{"lookup", "open", "read"} {
		b, a := before.value("intakefs_fuse_requests_total", "op", op), after.value("intakefs_fuse_requests_total", "op", op)
		if a <= b {
			t.Errorf("intakefs_fuse_requests_total{op=%q}: %v before reading a file, %v after: want more", op, b, a)
		}
		if h := after.value("intakefs_fuse_request_duration_seconds", "op", op); h != a {
			t.Errorf("op %s: %v latencies for %v requests", op, h, a)
		}
	}
	enoent := func(s scraped) float64 {
		return s.value("intakefs_fuse_request_errors_total", "op", "lookup", "errno", "ENOENT")
	}
	if enoent(after) <= enoent(before) {
		t.Errorf("a lookup of a missing name: ENOENT errors %v before, %v after", enoent(before), enoent(after))
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if after[name] == nil {
			t.Errorf("no %s: the runtime and process collectors are missing", name)
		}
	}

	compareStats(t, d, url, len(data))

	base := strings.TrimSuffix(url, "/metrics")
	if code := httpStatus(t, base+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET %s/debug/pprof/: %d, want 404: only metrics are served there", base, code)
	}
	if code := httpStatus(t, "http://"+pprofAddr+"/debug/pprof/"); code != http.StatusOK {
		t.Errorf("INTAKEFS_PPROF at %s: %d, want 200 (else the 404 above proves nothing)", pprofAddr, code)
	}

	d.stop()
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after unmount", base)
	}
}

// compareStats checks that every field of stats.json has a metric with
// the value the file shows. Readahead may still be fetching after a
// read, so it compares once stats.json reads the same on both sides of a
// scrape.
func compareStats(t *testing.T, d *daemon, url string, dataLen int) {
	t.Helper()
	for try := 0; ; try++ {
		st := readStats(t, d)
		m := scrape(t, url)
		if again := readStats(t, d); !sameStats(st, again) {
			if try == 50 {
				t.Fatalf("stats.json does not settle:\n%v\n%v", st, again)
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		fams := m.statsFamilies()
		for k, v := range st {
			name := fams[k]
			if name == "" {
				t.Errorf("stats.json's %s has no metric", k)
				continue
			}
			if got := m.value(name); got != v {
				t.Errorf("%s = %v, stats.json's %s = %v", name, got, k, v)
			}
		}
		if len(fams) != len(st) {
			t.Errorf("%d metrics name a stats.json field, stats.json has %d", len(fams), len(st))
		}
		// the read went through the cache, so the comparison above is of
		// counters that moved
		if st["RemoteRequests"] == 0 || st["RemoteBytes"] < float64(dataLen) || st["Reads"] == 0 {
			t.Errorf("the read of %d bytes left stats.json at RemoteRequests %v, RemoteBytes %v, Reads %v",
				dataLen, st["RemoteRequests"], st["RemoteBytes"], st["Reads"])
		}
		return
	}
}

func sameStats(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func bytesEqual(t *testing.T, got, want []byte) bool {
	t.Helper()
	if diff := sameBytes(got, want); diff != "" {
		t.Errorf("read through the mount: %s", diff)
		return false
	}
	return true
}

// httpStatus is the status of a GET of url, retried for a few seconds
// while nothing listens (a server the daemon starts as it mounts).
func httpStatus(t *testing.T, url string) int {
	t.Helper()
	c := http.Client{Timeout: ioTimeout}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			return resp.StatusCode
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMetricsAddrFailures: an address that cannot be listened on fails
// the mount before anything is mounted, with one line naming the flag
// and the address.
func TestMetricsAddrFailures(t *testing.T) {
	needBinary(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := realTempDir(t)
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, addr, why string }{
		{"port taken", taken.Addr().String(), "address already in use"},
		{"no port", "127.0.0.1", "missing port"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(mountPoints())
			r := run(t, 60*time.Second, "", binPath,
				append([]string{"mount", demoCatalog, mnt, "--metrics-addr", c.addr}, cacheArgs(t, filepath.Join(dir, "cache"))...)...)
			if isMounted(mnt) {
				lazyUnmount(mnt)
				t.Errorf("%s is mounted", mnt)
			}
			if after := len(mountPoints()); after > before {
				t.Errorf("%d mounts before, %d after", before, after)
			}
			if r.exitCode <= 0 {
				t.Fatalf("exit code %d (%v), want a failure; output:\n%s%s", r.exitCode, r.err, r.stdout, r.stderr)
			}
			checkOneLine(t, r.stderr, "--metrics-addr", c.addr, c.why)
		})
	}
	t.Run("mount helper", func(t *testing.T) {
		h := newMountHelper(t)
		dir := realTempDir(t)
		mnt := h.mountPoint(t, dir)
		out, err := h.mount(demoCatalog, mnt, "ro,metrics_addr="+taken.Addr().String()+",cache_dir="+filepath.Join(dir, "cache"))
		if err == nil {
			t.Fatalf("mounted with metrics_addr= a taken port:\n%s", out)
		}
		if isMounted(mnt) {
			t.Errorf("%s is mounted", mnt)
		}
		checkOneLine(t, string(out), "--metrics-addr", taken.Addr().String(), "address already in use")
	})
}

// checkOneLine checks that out is one line holding each of words.
func checkOneLine(t *testing.T, out string, words ...string) {
	t.Helper()
	msg := strings.TrimSpace(out)
	if msg == "" || strings.Contains(msg, "\n") {
		t.Errorf("want one line of error, got:\n%s", msg)
	}
	for _, w := range words {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not say %q", msg, w)
		}
	}
}

// TestMetricsMountHelper: metrics_addr= in an fstab entry serves metrics
// from the background daemon, at the address it logs to log_file=.
func TestMetricsMountHelper(t *testing.T) {
	h := newMountHelper(t)
	dir := realTempDir(t)
	mnt := h.mountPoint(t, dir)
	logFile := filepath.Join(dir, "intakefs.log")
	out, err := h.mount(demoCatalog, mnt, "ro,metrics_addr=127.0.0.1:0,log_file="+logFile+",cache_dir="+filepath.Join(dir, "cache"))
	if err != nil {
		t.Fatalf("mount.fuse3: %v\n%s", err, out)
	}
	url := metricsURL(t, func() string { b, _ := os.ReadFile(logFile); return string(b) })
	statFile(t, filepath.Join(mnt, ".catalog", "errors.txt"))
	if m := scrape(t, url); m.value("intakefs_fuse_requests_total", "op", "lookup") == 0 {
		t.Errorf("no lookups counted after a stat through the mount")
	}
	h.unmount(t, mnt)
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(strings.TrimSuffix(url, "/metrics"), "http://"), time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after umount", url)
	}
}
