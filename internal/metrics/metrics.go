// Package metrics serves a mount's Prometheus metrics (--metrics-addr):
// the counters of .catalog/stats.json, the FUSE requests served, and the
// Go runtime and process collectors.
//
// It uses the Prometheus client library rather than writing the text
// exposition format here: escaping, histograms, content negotiation and
// the runtime collectors are its maintainers' work, kept in step with
// Prometheus itself.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Path is where the metrics are served; nothing else is.
const Path = "/metrics"

// NewRegistry gathers the mount's metrics: stats.json's counters read
// from statsJSON at each scrape, the FUSE requests fuse counts, and the
// Go runtime's and this process's.
func NewRegistry(statsJSON func() ([]byte, error), fuse *FUSE) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		NewStats(statsJSON),
		fuse,
	)
	return reg
}

// Server serves a registry on a listener bound before the mount, so that
// an address that cannot be had fails the mount before anything is
// mounted.
type Server struct {
	ln    net.Listener
	srv   *http.Server
	done  chan struct{}
	close sync.Once
	err   error
}

// Listen binds addr (HOST:PORT; port 0 picks a free one, see URL).
func Listen(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Server{ln: ln}, nil
}

// URL is the address of the metrics, with the port the system chose.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + Path }

// Serve answers scrapes of reg until Close. Its own mux, not
// http.DefaultServeMux: net/http/pprof (INTAKEFS_PPROF) registers there,
// and a metrics port must not hand out profiles.
func (s *Server) Serve(reg *prometheus.Registry, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle(Path, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slogPrintln{log},
		// a stats source that fails must not hide the runtime's metrics
		ErrorHandling: promhttp.ContinueOnError,
	}))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "addr", s.ln.Addr().String(), "err", err.Error())
		}
	}()
}

// Close stops serving: scrapes under way get a moment to finish, then
// the listener and every connection are closed. Later calls do nothing.
func (s *Server) Close() error {
	s.close.Do(func() {
		if s.srv == nil {
			s.err = s.ln.Close()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if s.err = s.srv.Shutdown(ctx); s.err != nil {
			s.err = s.srv.Close()
		}
		<-s.done
	})
	return s.err
}

// slogPrintln is promhttp's error log.
type slogPrintln struct{ log *slog.Logger }

func (l slogPrintln) Println(v ...any) {
	l.log.Warn("metrics: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
