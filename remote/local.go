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
	if err := regularOrDir(p, fi); err != nil {
		return ObjectInfo{}, err
	}
	return localInfo(url, fi), nil
}

// localInfo: a local file's identity is its inode, size, mtime and ctime,
// so a file replaced by another with the same size and mtime (cp -p,
// rsync -t, tar x) is still a new version.
func localInfo(url string, fi os.FileInfo) ObjectInfo {
	info := ObjectInfo{URL: url, Size: fi.Size(), ModTime: fi.ModTime(), IsDir: fi.IsDir()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && !fi.IsDir() {
		info.ETag = fmt.Sprintf("ino:%d:%d:%d:%d.%d:%d.%d", st.Dev, st.Ino, st.Size,
			st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
	}
	return info
}

// LocalIdentity is the Identity of an open local file, to compare with
// the one it was planned with.
func LocalIdentity(url string, fi os.FileInfo) string { return localInfo(url, fi).Identity() }

// regularOrDir refuses FIFOs, devices and sockets: opening or reading
// one can block forever, and a FUSE request cannot be taken back.
func regularOrDir(p string, fi os.FileInfo) error {
	if fi.Mode().IsRegular() || fi.IsDir() {
		return nil
	}
	return fmt.Errorf("%w: %s is not a regular file (%v)", ErrNotSupported, p, fi.Mode().Type())
}

func (l Local) ReadRange(ctx context.Context, url string, off, length int64) (io.ReadCloser, error) {
	f, err := openRegular(LocalPath(url))
	if err != nil {
		return nil, err
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
		if err != nil || regularOrDir(child, fi) != nil {
			continue // vanished, a dangling link, a FIFO or device: not listed
		}
		out = append(out, localInfo(child, fi))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	return out, nil
}

func (Local) OpenReaderAt(ctx context.Context, url string) (ReaderAtCloser, error) {
	return openRegular(LocalPath(url))
}

// openRegular opens without blocking (O_NONBLOCK: a FIFO would wait for a
// writer) and refuses anything but a regular file.
func openRegular(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, mapOSErr(err)
	}
	fi, err := f.Stat()
	if err == nil {
		err = regularOrDir(p, fi)
		if err == nil && fi.IsDir() {
			err = fmt.Errorf("%s is a directory", p)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
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
