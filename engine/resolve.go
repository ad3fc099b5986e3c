package engine

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/intakefs/intakefs/remote"
)

// Resolver turns a data or catalog URL — a local path, http(s)://, s3://,
// gs://, possibly behind fsspec caching layers — and the storage_options
// given with it into the store that holds the bytes and the URL within it.
type Resolver struct {
	// Cwd is where relative local paths resolve.
	Cwd string
	// Config bounds each remote request; Retry wraps every remote store.
	Config remote.Config
	Retry  remote.RetryPolicy

	mu sync.Mutex // guards retried
	// retried holds the retrying wrapper of each store remote.Open gave.
	retried map[remote.Store]remote.Store
}

// cachingLayers are the fsspec layers intakefs's own cache stands in for.
var cachingLayers = map[string]bool{"simplecache": true, "filecache": true, "blockcache": true, "cached": true}

// Resolve finds the store for u.
func (r *Resolver) Resolve(ctx context.Context, u string, opts map[string]any) (remote.Store, string, error) {
	t := remote.SplitOptions(u, opts)
	for _, l := range t.Outer {
		if !cachingLayers[l.Protocol] {
			return nil, "", fmt.Errorf("%s: the fsspec layer %s:: is not supported", remote.RedactURL(u), l.Protocol)
		}
	}
	if t.Scheme == "file" || t.Scheme == "local" {
		p := strings.TrimPrefix(strings.TrimPrefix(t.URL, "file://"), "local://")
		if !filepath.IsAbs(p) {
			p = filepath.Join(r.Cwd, p)
		}
		return remote.Local{}, path.Clean(p), nil
	}
	s, err := remote.OpenConfig(ctx, t.Scheme, t.Options, r.Config)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", remote.RedactURL(t.URL), err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retried == nil {
		r.retried = map[remote.Store]remote.Store{}
	}
	w, ok := r.retried[s]
	if !ok {
		w = remote.WithRetry(s, r.Retry)
		r.retried[s] = w
	}
	return w, t.URL, nil
}

// isRemote reports whether u names something other than a local file.
func isRemote(u string) bool {
	t := remote.SplitOptions(u, nil)
	return t.Scheme != "file" && t.Scheme != "local"
}

// remoteDir is CATALOG_DIR for a remote catalog file as Intake's get_dir
// gives it: the parent URL, without a trailing slash.
func remoteDir(u string) string {
	scheme, rest, _ := strings.Cut(u, "://")
	rest = strings.TrimSuffix(rest, "/")
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	return scheme + "://" + rest
}
