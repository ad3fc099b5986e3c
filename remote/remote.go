// Package remote is intakefs's storage layer: one small interface (stat,
// ranged read, list) over local files, HTTP, S3 and GCS. Retry and caching
// are wrappers around a Store, never inside one, so every backend stays
// simple enough to pass the same conformance test.
//
// Typical use, from an Intake source's urlpath and storage_options:
//
//	t := remote.SplitOptions(urlpath, storageOptions) // fsspec chains, nested per-protocol options
//	s, err := remote.Open(t.Scheme, t.Options)        // Local, HTTP, S3 or GCS; no retries inside
//	s = remote.WithRetry(s, remote.DefaultRetryPolicy)
//	infos, err := remote.Glob(ctx, s, t.URL)
//
// URLs: Local takes paths and file:// URLs; HTTP takes http(s):// URLs;
// S3 takes s3://bucket/key (and s3a://); GCS takes gs://bucket/object (and
// gcs://). Object stores have no directories: List of "…/dir" lists the
// prefix "dir/" with delimiter "/", giving sub-prefixes as IsDir entries
// whose URLs have no trailing "/" (like Local's directories), and Stat of a
// prefix with objects under it gives IsDir. HTTP cannot list (ErrNotSupported).
//
// Errors match ErrNotExist, ErrPermission, ErrUnavailable, ErrNotSupported
// or ErrChanged through errors.Is; their text names the operation and the
// URL, and never holds credentials (see Redact). Every request is bounded
// by Timeouts, so a dead server gives ErrUnavailable, never a hang.
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
	// URL is the object's URL as the store was asked (Stat) or as it
	// builds it (List: the listed URL joined with the entry's name;
	// directories without a trailing "/").
	URL string
	// Size is -1 when the backend cannot tell without reading the whole
	// object (an HTTP server that sends neither Content-Length nor
	// Content-Range); the other backends always know it.
	Size int64
	// ModTime is the last modification (HTTP: Last-Modified), zero when
	// unknown.
	ModTime time.Time
	// ETag or generation where the backend has one; empty for local files,
	// whose identity is size+mtime. S3: the ETag without its quotes; GCS:
	// "gen:N" (the object generation); HTTP: the ETag header as sent.
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
// returns the object itself if it exists. In an http(s) URL only the path
// is a pattern: the '?' of a query string (a signed URL's) is no glob.
func Glob(ctx context.Context, s Store, pattern string) ([]ObjectInfo, error) {
	if !HasGlob(globPart(pattern)) {
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

// globPart is the part of a pattern that may hold metacharacters.
func globPart(p string) string {
	l := strings.ToLower(p)
	if strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://") {
		if i := strings.IndexByte(p, '?'); i >= 0 {
			return p[:i]
		}
	}
	return p
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
