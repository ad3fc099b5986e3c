package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Local is the Store for the local filesystem. URLs are absolute paths or
// file:// URLs.
type Local struct{}

var _ Store = Local{}
var _ ReaderAtOpener = Local{}

// LocalPath strips a file:// scheme.
func LocalPath(url string) string {
	if strings.HasPrefix(url, "file://") {
		return strings.TrimPrefix(url, "file://")
	}
	return url
}

func (Local) Stat(ctx context.Context, url string) (ObjectInfo, error) {
	p := LocalPath(url)
	fi, err := os.Stat(p)
	if err != nil {
		return ObjectInfo{}, mapOSErr(err)
	}
	return ObjectInfo{URL: url, Size: fi.Size(), ModTime: fi.ModTime(), IsDir: fi.IsDir()}, nil
}

func (l Local) ReadRange(ctx context.Context, url string, off, length int64) (io.ReadCloser, error) {
	f, err := os.Open(LocalPath(url))
	if err != nil {
		return nil, mapOSErr(err)
	}
	if length < 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, off, length), f}, nil
}

func (Local) List(ctx context.Context, url string) ([]ObjectInfo, error) {
	p := LocalPath(url)
	if p == "" {
		p = "."
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, mapOSErr(err)
	}
	out := make([]ObjectInfo, 0, len(ents))
	for _, e := range ents {
		child := join(url, e.Name())
		fi, err := os.Stat(filepath.Join(p, e.Name()))
		if err != nil {
			continue // vanished or dangling link: not listed
		}
		out = append(out, ObjectInfo{URL: child, Size: fi.Size(), ModTime: fi.ModTime(), IsDir: fi.IsDir()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	return out, nil
}

func (Local) OpenReaderAt(ctx context.Context, url string) (ReaderAtCloser, error) {
	f, err := os.Open(LocalPath(url))
	if err != nil {
		return nil, mapOSErr(err)
	}
	return f, nil
}

// mapOSErr keeps the *PathError text (it names the file) while making the
// error match this package's sentinels.
func mapOSErr(err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%w: %v", ErrNotExist, unwrapPath(err))
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w: %v", ErrPermission, unwrapPath(err))
	}
	return err
}

func unwrapPath(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Path
	}
	return err.Error()
}
