package engine

import (
	"context"
	"io"
	"sync"
	"sync/atomic"

	"github.com/intakefs/intakefs/cache/decomp"
	"github.com/intakefs/intakefs/remote"
)

// zipDirsKept is how many zip archives' directories are kept parsed.
const zipDirsKept = 8

// zipDirs keeps the parsed central directories of the zip archives whose
// members were opened last. Each compressed member is decompressed by a
// stream of its own (into its own spool), and each stream used to parse
// the whole directory again to find its member: for a CSV joined from
// the 20,000 members of one zip, 20,000 parses of 20,000 entries (7
// minutes; now 1.3 s). A kept directory is memory only: it reads the
// member's local header through openingReaderAt, which holds no
// descriptor between reads.
type zipDirs struct {
	mu sync.Mutex // guards m and order; never held across I/O
	m  map[string]*decomp.ZipArchive
	// order has the keys of m, least recently used first.
	order []string
	// parsed counts directories parsed (tests: once per archive).
	parsed atomic.Int64
}

// zipMember opens member m of the zip object obj, reading the member's
// bytes from ra (the caller's reader of obj, which its context cancels).
func (f *FS) zipMember(ctx context.Context, store remote.Store, obj remote.ObjectInfo, m decomp.Member, ra io.ReaderAt) (io.ReadCloser, error) {
	z, err := f.zipDir(ctx, store, obj)
	if err != nil {
		return nil, err
	}
	return z.OpenIn(m, ra)
}

// zipDir is the parsed directory of a zip object, parsed once however
// many of its members open at the same time.
func (f *FS) zipDir(ctx context.Context, store remote.Store, obj remote.ObjectInfo) (*decomp.ZipArchive, error) {
	zs := &f.zips
	key := obj.URL + "\x00" + obj.Identity()
	zs.mu.Lock()
	if z := zs.m[key]; z != nil {
		zs.touchLocked(key)
		zs.mu.Unlock()
		return z, nil
	}
	zs.mu.Unlock()
	v, err, _ := f.flight.Do("zipdir\x00"+key, func() (any, error) {
		// The archive keeps its reader for the local headers of later
		// opens, so the reader must outlive this request: it does not
		// take ctx (its remote reads are bounded by the retry policy).
		r := &openingReaderAt{f: f, store: store, obj: obj}
		z, err := decomp.OpenZip(r, obj.Size)
		if err != nil {
			return nil, err
		}
		zs.parsed.Add(1)
		zs.add(key, z)
		return z, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*decomp.ZipArchive), nil
}

// add keeps z, forgetting the least recently used past zipDirsKept.
func (zs *zipDirs) add(key string, z *decomp.ZipArchive) {
	zs.mu.Lock()
	defer zs.mu.Unlock()
	if zs.m == nil {
		zs.m = map[string]*decomp.ZipArchive{}
	}
	if _, ok := zs.m[key]; ok {
		zs.touchLocked(key)
	} else {
		zs.order = append(zs.order, key)
	}
	zs.m[key] = z
	for len(zs.order) > zipDirsKept {
		delete(zs.m, zs.order[0])
		zs.order = zs.order[1:]
	}
}

// touchLocked makes key the most recently used; zs.mu held.
func (zs *zipDirs) touchLocked(key string) {
	for i, k := range zs.order {
		if k == key {
			zs.order = append(append(zs.order[:i:i], zs.order[i+1:]...), key)
			return
		}
	}
}

// openingReaderAt reads an object by opening it for each read: a reader
// that can be kept for as long as a parsed directory is, without holding
// a descriptor (or a cache handle) for all that time.
type openingReaderAt struct {
	f     *FS
	store remote.Store
	obj   remote.ObjectInfo
}

func (o *openingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	r, err := o.f.Opener.Open(context.Background(), o.store, o.obj)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return r.ReadAt(p, off)
}
