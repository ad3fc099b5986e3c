package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/intakefs/intakefs/cache"
	"github.com/intakefs/intakefs/engine"
	"github.com/intakefs/intakefs/remote"
)

func (g *globalFlags) logger() (*slog.Logger, error) {
	var lvl slog.Level
	switch strings.ToLower(g.logLevel) {
	case "debug":
		lvl = slog.LevelDebug
	case "info", "":
		lvl = slog.LevelInfo
	case "warn", "warning":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", g.logLevel)
	}
	var w io.Writer = &logOut
	if g.logFile != "" {
		f, err := os.OpenFile(g.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("--log-file: %w", err)
		}
		w = f
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lvl})), nil
}

// logOut is standard error until a backgrounded mount detaches from its
// parent (see helper.go), then nothing: the parent's pipe is gone.
var logOut switchWriter

type switchWriter struct {
	mu      sync.Mutex
	discard bool
}

func (w *switchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.discard {
		return len(p), nil
	}
	return os.Stderr.Write(p)
}

func (w *switchWriter) detach() {
	w.mu.Lock()
	w.discard = true
	w.mu.Unlock()
}

func (g *globalFlags) rootParams() (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range g.params {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--param %q: want key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

// open loads the catalog the way every command does, reading remote
// data without the on-disk cache.
func (g *globalFlags) open(catalog string) (*engine.FS, *slog.Logger, error) {
	return g.openWith(catalog, nil)
}

// openWith loads the catalog reading remote data through ch (nil: none).
func (g *globalFlags) openWith(catalog string, ch *cache.Cache) (*engine.FS, *slog.Logger, error) {
	log, err := g.logger()
	if err != nil {
		return nil, nil, err
	}
	params, err := g.rootParams()
	if err != nil {
		return nil, nil, err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, nil, err
	}
	opts, err := g.rootOptions()
	if err != nil {
		return nil, nil, err
	}
	if g.retry.MaxAttempts < 1 {
		return nil, nil, fmt.Errorf("--retries %d: want 1 or more (1: no retries)", g.retry.MaxAttempts)
	}
	if g.retry.MaxElapsed <= 0 {
		return nil, nil, fmt.Errorf("--retry-max-time %s: want a positive duration, e.g. 30s", g.retry.MaxElapsed)
	}
	for _, c := range []struct {
		flag string
		d    time.Duration
	}{{"--connect-timeout", g.timeouts.Connect}, {"--request-timeout", g.timeouts.Request}, {"--idle-timeout", g.timeouts.Idle}} {
		if c.d <= 0 {
			return nil, nil, fmt.Errorf("%s %s: want a positive duration", c.flag, c.d)
		}
	}
	if g.remoteRecheck <= 0 {
		return nil, nil, fmt.Errorf("--remote-recheck %s: want a positive duration, e.g. 10s or 5m", g.remoteRecheck)
	}
	retry := g.retry
	retry.OnRetry = func(op, url string, attempt int, err error) {
		log.Info("retrying remote request", "op", op, "url", remote.RedactURL(url), "attempt", attempt, "reason", err.Error())
	}
	tree, err := engine.New(catalog, engine.Options{Cwd: cwd, RootParams: params, RootOptions: opts, AllowShell: g.allowShell, Log: log,
		Remote: remote.Config{Timeouts: g.timeouts}, Retry: retry, Opener: opener(ch), Stats: cacheStats(ch), RemoteRecheck: g.remoteRecheck})
	if err != nil {
		return nil, nil, err
	}
	return tree, log, nil
}

// rootOptions reads --storage-option key=value: dotted keys nest, values
// are YAML scalars or flow collections.
func (g *globalFlags) rootOptions() (map[string]any, error) {
	if len(g.storageOpt) == 0 {
		return nil, nil
	}
	out := map[string]any{}
	for _, kv := range g.storageOpt {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--storage-option %q: want key=value", kv)
		}
		var val any
		if err := yaml.Unmarshal([]byte(v), &val); err != nil || val == nil {
			val = v
		}
		m := out
		parts := strings.Split(k, ".")
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = val
	}
	return out, nil
}

func opener(ch *cache.Cache) cache.Opener {
	if ch == nil {
		return cache.Direct{}
	}
	return ch
}

func cacheStats(ch *cache.Cache) func() any {
	if ch == nil {
		return nil
	}
	return func() any { return ch.Stats() }
}
