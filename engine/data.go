package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/intakefs/intakefs/remote"
)

// urlArgKeys are the argument names drivers take their data location
// from, in the order they are tried.
var urlArgKeys = []string{"urlpath", "path", "url", "paths", "filename", "files", "uri"}

// driverExt is each driver's usual extension (SPEC §2).
var driverExt = map[string]string{
	"csv": "csv", "textfiles": "txt", "json": "json", "jsonl": "jsonl",
	"parquet": "parquet", "netcdf": "nc", "numpy": "npy", "zarr": "zarr", "ndzarr": "zarr",
	"yaml_file_cat": "yaml", "arrow": "arrow", "feather": "feather", "shapefile": "shp",
	"geojson": "geojson", "geoparquet": "parquet", "xarray_image": "png", "rasterio": "tif",
}

// concatFormats are the drivers whose parts join into one file.
var concatFormats = map[string]string{"csv": "csv", "textfiles": "text", "jsonl": "text"}

// compressionSuffixes are dropped from a data file's name (SPEC §2).
var compressionSuffixes = []string{".gz", ".bz2", ".xz", ".zst", ".zstd", ".lz4", ".z"}

// urlArg finds the data location in rendered args: a string or a list of
// strings. A cache block's argkey names it explicitly.
func urlArg(r *Rendered) ([]string, bool, bool) {
	keys := urlArgKeys
	for _, c := range r.Entry.Cache {
		if m, ok := c.(map[string]any); ok {
			if k, ok := m["argkey"].(string); ok {
				keys = append([]string{k}, keys...)
				break
			}
		}
	}
	for _, k := range keys {
		switch v := r.Args[k].(type) {
		case string:
			if v != "" {
				return []string{v}, false, true
			}
		case []any:
			var out []string
			for _, x := range v {
				if s, ok := x.(string); ok {
					out = append(out, s)
				}
			}
			if len(out) > 0 {
				return out, true, true
			}
		}
	}
	return nil, false, false
}

// dataExt is the extension of the data as read (SPEC §2).
func dataExt(r *Rendered) string {
	urls, _, ok := urlArg(r)
	if ok {
		base := path.Base(stripChain(urls[0]))
		low := strings.ToLower(base)
		for _, s := range compressionSuffixes {
			if strings.HasSuffix(low, s) {
				base = base[:len(base)-len(s)]
				break
			}
		}
		if strings.HasSuffix(strings.ToLower(base), ".tgz") {
			base = base[:len(base)-4] + ".tar"
		}
		if i := strings.LastIndexByte(base, '.'); i > 0 && i < len(base)-1 {
			ext := base[i+1:]
			if !strings.ContainsAny(ext, "*?[]{}") {
				return ext
			}
		}
	}
	if e, ok := driverExt[r.Entry.Driver]; ok {
		return e
	}
	return "data"
}

// stripChain removes fsspec caching prefixes: intakefs's own cache serves
// them (simplecache::s3://b/k is s3://b/k).
func stripChain(u string) string {
	for {
		i := strings.Index(u, "::")
		if i < 0 {
			return u
		}
		switch u[:i] {
		case "simplecache", "filecache", "blockcache":
			u = u[i+2:]
		default:
			return u
		}
	}
}

// PlanKind says how a source's data is shown.
type PlanKind int

const (
	// PlanFile: one file (one object, or parts concatenated).
	PlanFile PlanKind = iota
	// PlanParts: a directory of the parts under their own names.
	PlanParts
	// PlanTree: a directory object (a parquet dataset, a zarr store)
	// shown as it is.
	PlanTree
)

// Plan is where a source's bytes come from.
type Plan struct {
	Kind  PlanKind
	Store remote.Store
	Parts []remote.ObjectInfo
	// Segments make up the file for PlanFile.
	Segments []Segment
	Size     int64
	// Root is the directory URL for PlanTree.
	Root string
}

// identity names the exact versions of the objects behind the plan.
func (p *Plan) identity() string {
	var b strings.Builder
	for _, o := range p.Parts {
		b.WriteString("\x00" + o.URL + "\x00" + o.Identity())
	}
	if p.Kind == PlanTree {
		b.WriteString("\x00" + p.Root)
	}
	return b.String()
}

// Segment is a run of a file: bytes of an object, or literal bytes (a
// newline between parts that lack one).
type Segment struct {
	// Start is the segment's offset in the file.
	Start   int64
	Obj     *remote.ObjectInfo
	Off     int64
	Len     int64
	Literal []byte
}

// ErrNoData is a source with no data location in its arguments.
var ErrNoData = errors.New("source has no data location (no urlpath/path argument)")

// planFor works out a rendered source's data: globs are expanded, a list
// kept in sorted order, CSV headers checked.
func (f *FS) planFor(ctx context.Context, r *Rendered) (*Plan, error) {
	urls, isList, ok := urlArg(r)
	if !ok {
		return nil, ErrNoData
	}
	var store remote.Store
	var objs []remote.ObjectInfo
	multi := isList
	for _, u := range urls {
		opts, _ := r.Args["storage_options"].(map[string]any)
		s, ru, err := f.Resolver.Resolve(ctx, u, opts)
		if err != nil {
			return nil, err
		}
		if store != nil && s != store {
			return nil, fmt.Errorf("source %q mixes storage backends in one list", r.Entry.Name)
		}
		store = s
		if remote.HasGlob(ru) {
			multi = true
			found, err := remote.Glob(ctx, s, ru)
			if err != nil {
				return nil, err
			}
			objs = append(objs, found...)
			continue
		}
		info, err := s.Stat(ctx, ru)
		if err != nil {
			return nil, err
		}
		objs = append(objs, info)
	}
	if multi {
		sortInfos(objs)
		if len(objs) == 0 {
			return nil, fmt.Errorf("%w: no files match %s", remote.ErrNotExist, strings.Join(urls, ", "))
		}
	}
	format, concat := concatFormats[r.Entry.Driver]
	if !multi && len(objs) == 1 && objs[0].IsDir {
		return &Plan{Kind: PlanTree, Store: store, Root: objs[0].URL}, nil
	}
	if multi && !concat {
		return &Plan{Kind: PlanParts, Store: store, Parts: objs}, nil
	}
	p := &Plan{Kind: PlanFile, Store: store, Parts: objs}
	if err := f.segment(ctx, p, format); err != nil {
		return nil, err
	}
	return p, nil
}

// segment lays out the concatenation: for CSV whose parts share a header
// row, the header is kept once; a part that does not end in a newline gets
// one so that rows never run together.
func (f *FS) segment(ctx context.Context, p *Plan, format string) error {
	if len(p.Parts) == 1 {
		o := &p.Parts[0]
		p.Segments = []Segment{{Obj: o, Len: o.Size}}
		p.Size = o.Size
		return nil
	}
	var header []byte
	sameHeader := format == "csv"
	type partInfo struct {
		hdrLen int64
		lastNL bool
	}
	infos := make([]partInfo, len(p.Parts))
	for i := range p.Parts {
		o := &p.Parts[i]
		if o.IsDir {
			return fmt.Errorf("%s is a directory, not a file", o.URL)
		}
		if o.Size == 0 {
			infos[i].lastNL = true
			continue
		}
		last, err := readSmall(ctx, p.Store, o.URL, o.Size-1, 1)
		if err != nil {
			return err
		}
		infos[i].lastNL = len(last) == 1 && last[0] == '\n'
		if format == "csv" {
			h, err := firstLine(ctx, p.Store, *o)
			if err != nil {
				return err
			}
			infos[i].hdrLen = int64(len(h))
			if i == 0 {
				header = h
			} else if !bytes.Equal(bytes.TrimRight(h, "\r\n"), bytes.TrimRight(header, "\r\n")) {
				sameHeader = false
			}
		}
	}
	var size int64
	for i := range p.Parts {
		o := &p.Parts[i]
		off := int64(0)
		if sameHeader && i > 0 {
			off = infos[i].hdrLen
		}
		if o.Size-off > 0 {
			p.Segments = append(p.Segments, Segment{Start: size, Obj: o, Off: off, Len: o.Size - off})
			size += o.Size - off
			if !infos[i].lastNL && i < len(p.Parts)-1 {
				p.Segments = append(p.Segments, Segment{Start: size, Literal: []byte("\n"), Len: 1})
				size++
			}
		}
	}
	p.Size = size
	return nil
}

func readSmall(ctx context.Context, s remote.Store, url string, off, n int64) ([]byte, error) {
	rc, err := s.ReadRange(ctx, url, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, n))
}

// firstLine is the header row of a CSV part, with its newline.
func firstLine(ctx context.Context, s remote.Store, o remote.ObjectInfo) ([]byte, error) {
	const max = 1 << 20
	n := o.Size
	if n > max {
		n = max
	}
	b, err := readSmall(ctx, s, o.URL, 0, n)
	if err != nil {
		return nil, err
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i+1], nil
	}
	return b, nil
}

func sortInfos(objs []remote.ObjectInfo) {
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].URL < objs[j].URL })
}
