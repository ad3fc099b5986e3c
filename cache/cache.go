// Package cache sits between the engine and remote stores: it turns an
// object into something readable at any offset, keeping fetched bytes on
// local disk. Decompression lives here too, behind the same interface.
//
// Two Openers: Direct opens local files in place (and reads other stores
// with a ranged request per read); Cache (blockcache.go, which describes
// its design) keeps fetched blocks on disk across restarts, with readahead
// for sequential readers. Handles of both implement ContextReaderAt where
// they can wait on a store.
package cache

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/intakefs/intakefs/remote"
)

// Opener opens one object (as identified by its ObjectInfo) for random
// access.
type Opener interface {
	Open(ctx context.Context, s remote.Store, obj remote.ObjectInfo) (remote.ReaderAtCloser, error)
}

// Direct is the Opener used for stores that are already local: a file on
// disk is its own best cache, so it is opened in place rather than copied.
// Stores without random access are read with a ranged request per read.
type Direct struct{}

var _ Opener = Direct{}

func (Direct) Open(ctx context.Context, s remote.Store, obj remote.ObjectInfo) (remote.ReaderAtCloser, error) {
	if o, ok := s.(remote.ReaderAtOpener); ok {
		f, err := o.OpenReaderAt(ctx, obj.URL)
		if err != nil {
			return nil, err
		}
		if of, ok := f.(*os.File); ok && obj.ETag != "" {
			// the file at that path now may not be the one planned
			fi, err := of.Stat()
			if err == nil && remote.LocalIdentity(obj.URL, fi) != obj.Identity() {
				f.Close()
				return nil, fmt.Errorf("%s: %w", obj.URL, remote.ErrChanged)
			}
		}
		return f, nil
	}
	return &rangeReader{ctx: ctx, s: s, obj: obj}, nil
}

// rangeReader serves ReadAt with one ranged read per call.
type rangeReader struct {
	ctx context.Context
	s   remote.Store
	obj remote.ObjectInfo
}

func (r *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	return r.ReadAtContext(r.ctx, p, off)
}

// ReadAtContext implements ContextReaderAt.
func (r *rangeReader) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off >= r.obj.Size {
		return 0, io.EOF
	}
	n := int64(len(p))
	if off+n > r.obj.Size {
		n = r.obj.Size - off
	}
	rc, err := r.s.ReadRange(ctx, r.obj.URL, off, n)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	got, err := io.ReadFull(rc, p[:n])
	if err == io.ErrUnexpectedEOF {
		return got, fmt.Errorf("%s: object shorter than its size %d", r.obj.URL, r.obj.Size)
	}
	if err == nil && int64(got) < int64(len(p)) {
		err = io.EOF
	}
	return got, err
}

func (r *rangeReader) Close() error { return nil }
