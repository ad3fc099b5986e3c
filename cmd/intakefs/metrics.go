package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/intakefs/intakefs/engine"
	"github.com/intakefs/intakefs/internal/metrics"
)

// listenMetrics binds --metrics-addr before anything is mounted (nil
// when the flag is not given), so that an address that cannot be had
// is an error and no mount.
func listenMetrics(addr string) (*metrics.Server, error) {
	if addr == "" {
		return nil, nil
	}
	if strings.Contains(addr, "://") {
		// net would say "too many colons in address"
		return nil, fmt.Errorf("--metrics-addr %q: want HOST:PORT, not a URL", addr)
	}
	s, err := metrics.Listen(addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %q: %s", addr, listenReason(err))
	}
	return s, nil
}

// listenReason is why a listen failed, without the "listen tcp ADDR"
// the flag's error already says.
func listenReason(err error) string {
	var se *os.SyscallError
	var ae *net.AddrError
	var de *net.DNSError
	switch {
	case errors.As(err, &se):
		return se.Err.Error()
	case errors.As(err, &ae):
		return ae.Err
	case errors.As(err, &de):
		return de.Err
	}
	return err.Error()
}

// statsReader reads the mount's .catalog/stats.json as the engine makes
// it for a reader of the mount, so the metrics and the file cannot
// disagree. The file is found on the first scrape and kept: a lookup
// per scrape would touch the root catalog's listing, which a scrape has
// no business doing.
func statsReader(tree *engine.FS) func() ([]byte, error) {
	var mu sync.Mutex
	var file engine.File
	find := func(ctx context.Context) (engine.File, error) {
		mu.Lock()
		defer mu.Unlock()
		if file != nil {
			return file, nil
		}
		n, err := tree.Walk(ctx, ".catalog/stats.json")
		if err != nil {
			return nil, err
		}
		f, ok := n.(engine.File)
		if !ok {
			return nil, errors.New(".catalog/stats.json is not a file")
		}
		file = f
		return f, nil
	}
	return func() ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		f, err := find(ctx)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if _, err := engine.ReadAll(ctx, f, &buf); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
}
