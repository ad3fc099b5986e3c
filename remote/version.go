package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrChanged is a read of a version of an object that is no longer
// current: the object was rewritten since the Stat that gave its info. The
// caller stats again and starts over; it is never retried as such.
var ErrChanged = errors.New("object changed since it was examined")

// VersionReader is implemented by stores that can make a ranged read
// conditional on the object still being the version info describes
// (S3 and HTTP: If-Match on the ETag; GCS: the generation; Local: size and
// mtime), so that a cache never mixes bytes of two versions. The remote
// stores also check the answer's own ETag and size, for servers that
// ignore the condition.
type VersionReader interface {
	// ReadVersion is ReadRange(ctx, info.URL, off, length), failing with
	// ErrChanged when the object is no longer the one info describes.
	ReadVersion(ctx context.Context, info ObjectInfo, off, length int64) (io.ReadCloser, error)
}

// ReadVersion reads through s's VersionReader when it has one, and is a
// plain ReadRange otherwise (a check is then up to the caller). Where the
// backend cannot ask for a version (an HTTP server without a strong ETag)
// only the answer is checked: its ETag, if weak, and its size.
func ReadVersion(ctx context.Context, s Store, info ObjectInfo, off, length int64) (io.ReadCloser, error) {
	if vr, ok := s.(VersionReader); ok {
		return vr.ReadVersion(ctx, info, off, length)
	}
	return s.ReadRange(ctx, info.URL, off, length)
}

var _ VersionReader = Local{}

// ReadVersion implements VersionReader: the open file must still have the
// size and mtime of info (what Local's identity is).
func (l Local) ReadVersion(ctx context.Context, info ObjectInfo, off, length int64) (io.ReadCloser, error) {
	rc, err := l.ReadRange(ctx, info.URL, off, length)
	if err != nil {
		return nil, err
	}
	var f *os.File
	switch x := rc.(type) {
	case *os.File:
		f = x
	case struct {
		io.Reader
		io.Closer
	}:
		f, _ = x.Closer.(*os.File)
	}
	if f != nil {
		fi, err := f.Stat()
		if err == nil && (fi.Size() != info.Size || !fi.ModTime().Equal(info.ModTime)) {
			rc.Close()
			return nil, &opError{op: "read", url: info.URL, kind: ErrChanged, reason: "size or mtime changed"}
		}
	}
	return rc, nil
}

// versionDiffers says how an answer with this ETag and total size ("" and
// -1 where the answer does not say) is of another version than want, or
// "" when nothing in it shows one. Each store reads the two off its own
// kind of answer.
func versionDiffers(want ObjectInfo, etag string, total int64) string {
	if etagsDiffer(want.ETag, etag) {
		return fmt.Sprintf("the server answered with ETag %s, not %s", strings.Trim(etag, `"`), strings.Trim(want.ETag, `"`))
	}
	if want.Size >= 0 && total >= 0 && total != want.Size {
		return fmt.Sprintf("the object is now %d bytes, not %d", total, want.Size)
	}
	return ""
}

// etagsDiffer reports whether two ETags name different versions. An
// absent one says nothing, and the W/ (weak) mark is ignored: a proxy may
// weaken a tag without the content changing.
func etagsDiffer(a, b string) bool {
	a, b = strings.Trim(strings.TrimPrefix(a, "W/"), `"`), strings.Trim(strings.TrimPrefix(b, "W/"), `"`)
	return a != "" && b != "" && a != b
}
