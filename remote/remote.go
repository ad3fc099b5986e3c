// Package remote is intakefs's storage layer: one small interface (stat,
// ranged read, list) over local files, HTTP, S3 and GCS. Retry and caching
// are wrappers around a Store, never inside one, so every backend stays
// simple enough to pass the same conformance test.
package remote

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ObjectInfo describes one object. Identity is what the cache keys on: two
// infos with the same URL and Identity are the same bytes.
type ObjectInfo struct {
	URL     string
	Size    int64
	ModTime time.Time
	// ETag or generation where the backend has one; empty for local files,
	// whose identity is size+mtime.
	ETag  string
	IsDir bool
}

// Identity is a string that changes whenever the object's content may have.
func (o ObjectInfo) Identity() string {
	if o.ETag != "" {
		return "etag:" + o.ETag
	}
	return "st:" + itoa(o.Size) + ":" + itoa(o.ModTime.UnixNano())
}

// Store is the storage interface every backend implements.
type Store interface {
	// Stat returns the object's info; ErrNotExist when there is none.
	Stat(ctx context.Context, url string) (ObjectInfo, error)
	// ReadRange streams length bytes starting at off (length < 0: to the
	// end). The caller closes the reader.
	ReadRange(ctx context.Context, url string, off, length int64) (io.ReadCloser, error)
	// List returns the objects directly under the directory/prefix url,
	// sorted by URL. Directories are returned with IsDir set.
	List(ctx context.Context, url string) ([]ObjectInfo, error)
}

// ReaderAtOpener is implemented by stores whose objects can be opened for
// random access cheaply (local files); the cache layer uses it to avoid a
// request per read.
type ReaderAtOpener interface {
	OpenReaderAt(ctx context.Context, url string) (ReaderAtCloser, error)
}

// ReaderAtCloser is an open object for random access.
type ReaderAtCloser interface {
	io.ReaderAt
	io.Closer
}

// Errors every backend maps its own failures onto, so that the FUSE layer
// can translate them in one place.
var (
	ErrNotExist   = fs.ErrNotExist
	ErrPermission = fs.ErrPermission
	// ErrUnavailable is a backend that could not be reached or kept failing.
	ErrUnavailable = errors.New("storage unavailable")
)

// HasGlob reports whether p contains glob metacharacters.
func HasGlob(p string) bool { return strings.ContainsAny(p, "*?[") }

// Glob expands a pattern with '*', '?', '[...]' and '**' segments against a
// store's listings, in sorted order. A pattern without metacharacters
// returns the object itself if it exists.
func Glob(ctx context.Context, s Store, pattern string) ([]ObjectInfo, error) {
	if !HasGlob(pattern) {
		info, err := s.Stat(ctx, pattern)
		if err != nil {
			return nil, err
		}
		return []ObjectInfo{info}, nil
	}
	prefix, rest := splitGlob(pattern)
	var out []ObjectInfo
	if err := globWalk(ctx, s, prefix, strings.Split(rest, "/"), &out); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	return dedup(out), nil
}

// splitGlob splits at the last '/' before the first metacharacter.
func splitGlob(p string) (string, string) {
	i := strings.IndexAny(p, "*?[")
	j := strings.LastIndex(p[:i], "/")
	if j < 0 {
		return "", p
	}
	return p[:j], p[j+1:]
}

func globWalk(ctx context.Context, s Store, dir string, segs []string, out *[]ObjectInfo) error {
	if len(segs) == 0 {
		return nil
	}
	seg := segs[0]
	if seg == "**" {
		// zero directories
		if err := globWalk(ctx, s, dir, segs[1:], out); err != nil {
			return err
		}
		ents, err := s.List(ctx, dir)
		if err != nil {
			return listErr(err)
		}
		for _, e := range ents {
			if e.IsDir {
				if err := globWalk(ctx, s, e.URL, segs, out); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if !HasGlob(seg) {
		next := join(dir, seg)
		if len(segs) == 1 {
			info, err := s.Stat(ctx, next)
			if err == nil && !info.IsDir {
				*out = append(*out, info)
			}
			return nil
		}
		return globWalk(ctx, s, next, segs[1:], out)
	}
	ents, err := s.List(ctx, dir)
	if err != nil {
		return listErr(err)
	}
	for _, e := range ents {
		ok, err := path.Match(seg, baseName(e.URL))
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if len(segs) == 1 {
			if !e.IsDir {
				*out = append(*out, e)
			}
		} else if e.IsDir {
			if err := globWalk(ctx, s, e.URL, segs[1:], out); err != nil {
				return err
			}
		}
	}
	return nil
}

// listErr turns a missing directory inside a glob into "no match".
func listErr(err error) error {
	if errors.Is(err, ErrNotExist) {
		return nil
	}
	return err
}

func dedup(in []ObjectInfo) []ObjectInfo {
	out := in[:0]
	for i, o := range in {
		if i > 0 && o.URL == in[i-1].URL {
			continue
		}
		out = append(out, o)
	}
	return out
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	if strings.HasSuffix(dir, "/") {
		return dir + name
	}
	return dir + "/" + name
}

func baseName(u string) string {
	u = strings.TrimSuffix(u, "/")
	if i := strings.LastIndex(u, "/"); i >= 0 {
		return u[i+1:]
	}
	return u
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
