package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/intakefs/intakefs/cache/decomp"
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

// intakeDataArg is the argument each of Intake's own drivers reads its
// data from, and hands its cache whatever the cache block's argkey says
// (Intake 0.6.6 does not read argkey to find the data).
var intakeDataArg = map[string]string{"csv": "urlpath", "textfiles": "urlpath", "json": "urlpath", "jsonl": "urlpath", "numpy": "path"}

// urlArg finds the data location in rendered args: a string or a list of
// strings. For other drivers than Intake's own, a cache block's argkey
// names it explicitly.
func urlArg(r *Rendered) ([]string, bool, bool) {
	for _, k := range dataArgKeys(r) {
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

// dataArgKeys are the arguments a source's data location may be in, in
// the order they are tried.
func dataArgKeys(r *Rendered) []string {
	if k, own := intakeDataArg[r.Entry.Driver]; own {
		return append([]string{k}, urlArgKeys...)
	}
	for _, c := range r.Entry.Cache {
		if m, ok := c.(map[string]any); ok {
			if k, ok := m["argkey"].(string); ok {
				return append([]string{k}, urlArgKeys...)
			}
		}
	}
	return urlArgKeys
}

// badURLArg finds a data argument urlArg could not use: one that is set
// but is neither a string nor a list of strings.
func badURLArg(r *Rendered) (string, bool) {
	for _, k := range dataArgKeys(r) {
		switch v := r.Args[k].(type) {
		case nil, string:
		case []any:
			for _, x := range v {
				if _, ok := x.(string); !ok {
					return k, true
				}
			}
		default:
			return k, true
		}
	}
	return "", false
}

// dataExt is the extension of the data as read (SPEC §2): an archive's
// members are the data, so an archive's name says nothing (the driver's
// extension is used), unless a zip:// or tar:// chain names one member.
func dataExt(r *Rendered) string {
	urls, _, ok := urlArg(r)
	if ok {
		u := stripChain(urls[0])
		if inner, sel, err := splitArchiveChain(u); err == nil && sel != nil {
			u = sel.member
		} else if err == nil {
			u = inner
		}
		base, _ := decomp.StripSuffix(path.Base(u))
		if decomp.ByName(base).Archive != decomp.NoArchive {
			base = ""
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
	// PlanFile: one file (one item, or items concatenated).
	PlanFile PlanKind = iota
	// PlanParts: a directory of the items under their own names.
	PlanParts
	// PlanTree: a directory object (a parquet dataset, a zarr store)
	// shown as it is.
	PlanTree
)

// Plan is where a source's bytes come from.
type Plan struct {
	Kind  PlanKind
	Store remote.Store
	// Parts are the objects behind the data (what cache warm fetches).
	Parts []remote.ObjectInfo
	// Items are the pieces of data: objects, decompressed or not, and
	// archive members.
	Items []Item
	// Segments make up the file for PlanFile.
	Segments []Segment
	// Size is the file's size; -1 when not known without decompressing.
	Size int64
	// Root is the directory URL for PlanTree.
	Root string
	// Problems are what planning found wrong and worked around (an
	// archive member whose name an earlier one has, an archive cut short):
	// errors.txt shows them.
	Problems []string

	partsMu sync.Mutex
	parts   *partsIndex // a PlanParts' nodes, built on first use
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

// Segment is a run of a file: bytes of an item from Off, or literal bytes
// (a newline between parts that lack one).
type Segment struct {
	// Item indexes Plan.Items; -1 for a literal.
	Item int
	Off  int64
	// Len is -1 until the item's size is known (a stream that records no
	// size, or a conditional newline after one).
	Len     int64
	Literal []byte
	// Cond: the literal newline is there only if the item of the segment
	// before does not end in one (not known before it is decompressed).
	Cond bool
}

// ErrNoData is a source with no data location in its arguments.
var ErrNoData = errors.New("source has no data location (no urlpath/path argument)")

// planFor works out a rendered source's data: globs are expanded, a list
// kept in sorted order, compressed objects and archives opened up, CSV
// headers checked.
func (f *FS) planFor(ctx context.Context, r *Rendered) (*Plan, error) {
	urls, isList, ok := urlArg(r)
	if !ok {
		return nil, ErrNoData
	}
	cb, err := parseCacheBlock(r.Entry)
	if err != nil {
		return nil, err
	}
	var store remote.Store
	var objs []remote.ObjectInfo
	var sel *archiveSel
	multi := isList
	for _, u := range urls {
		inner, s1, err := splitArchiveChain(u)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", r.Entry.Name, err)
		}
		if s1 != nil {
			if sel != nil && *sel != *s1 {
				return nil, fmt.Errorf("source %q: a list of %s:// chains must name the same member", r.Entry.Name, s1.proto)
			}
			sel = s1
		}
		opts, _ := r.Args["storage_options"].(map[string]any)
		s, ru, err := f.Resolver.Resolve(ctx, inner, opts)
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
		if sel != nil {
			return nil, fmt.Errorf("%s is a directory, not a %s archive", objs[0].URL, sel.proto)
		}
		return &Plan{Kind: PlanTree, Store: store, Root: objs[0].URL}, nil
	}
	items, archived, problems, err := f.itemsFor(ctx, store, objs, r, cb, sel)
	if err != nil {
		return nil, err
	}
	if archived && sel == nil {
		multi = true
	}
	if multi && !concat {
		return &Plan{Kind: PlanParts, Store: store, Parts: objs, Items: items, Problems: problems}, nil
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: no archive member of %s matches", remote.ErrNotExist, strings.Join(urls, ", "))
	}
	p := &Plan{Kind: PlanFile, Store: store, Parts: objs, Items: items, Problems: problems}
	if err := f.segment(ctx, p, format); err != nil {
		return nil, err
	}
	return p, nil
}

// compressionArg is the source's `compression` argument (Intake's csv,
// textfiles and json drivers take it, also inside csv_kwargs), in
// decomp.Detect's terms: "" when not given, "None" for null.
func compressionArg(r *Rendered) (string, error) {
	v, ok := r.Args["compression"]
	if !ok {
		if kw, isMap := r.Args["csv_kwargs"].(map[string]any); isMap {
			v, ok = kw["compression"]
		}
	}
	if !ok {
		return "", nil
	}
	switch x := v.(type) {
	case nil:
		return "None", nil
	case string:
		return x, nil
	}
	return "", fmt.Errorf("%s:%d: source %q: compression: want a name such as gzip or infer, got %v", r.Entry.File, r.Entry.Line, r.Entry.Name, v)
}

// itemsFor turns objects into items: each object's format is detected
// (or set by a cache block), compressed objects read decompressed, and
// archives give their members (those the cache block's regex_filter or
// the URL chain selects). archived reports that an archive was opened;
// problems are what the archives' listings worked around.
func (f *FS) itemsFor(ctx context.Context, store remote.Store, objs []remote.ObjectInfo, r *Rendered, cb *cacheBlock, sel *archiveSel) (items []Item, archived bool, problems []string, err error) {
	arg, err := compressionArg(r)
	if err != nil {
		return nil, false, nil, err
	}
	names := partNames(objs)
	for i := range objs {
		o := &objs[i]
		if o.IsDir {
			return nil, false, nil, fmt.Errorf("%s is a directory, not a file", o.URL)
		}
		var fm decomp.Format
		switch {
		case cb != nil && cb.Type == "compressed":
			fm, err = decomp.IntakeDecomp(o.URL, cb.Decomp)
			if err == nil {
				// what the catalog says must be what the bytes are
				check := fm.Compression.String()
				if fm.Archive == decomp.Zip {
					check = "zip"
				}
				_, err = f.detect(ctx, store, o, check)
			}
		case sel != nil && sel.proto == "zip":
			fm, err = f.detect(ctx, store, o, "zip")
		default:
			fm, err = f.detect(ctx, store, o, arg)
		}
		if err != nil {
			return nil, false, nil, fmt.Errorf("source %q: %w", r.Entry.Name, err)
		}
		if isPrefetch(ctx) && (fm.Archive != decomp.NoArchive || fm.Compression != decomp.None) {
			// listing or sizing it is a decompression, or reading an
			// archive's directory: a reader's to pay for
			return nil, false, nil, errNotAhead
		}
		if sel != nil && sel.proto == "tar" && fm.Archive != decomp.Tar {
			if fm.Archive == decomp.Zip {
				return nil, false, nil, fmt.Errorf("source %q: %s is a zip archive, not a tar", r.Entry.Name, o.URL)
			}
			fm.Archive = decomp.Tar // fsspec's tar:// reads any tar, whatever its name
		}
		if fm.Archive != decomp.NoArchive {
			archived = true
			ms, ps, err := f.archiveMembers(ctx, store, o, fm)
			if err != nil {
				return nil, false, nil, err
			}
			problems = append(problems, ps...)
			for _, m := range ms {
				switch {
				case sel != nil:
					if ok, _ := path.Match(sel.member, m.Name); !ok {
						continue
					}
				case cb != nil && cb.filter != nil:
					if !cb.filter.Match(m.Name) {
						continue
					}
				}
				if len(objs) > 1 {
					m.Name = names[i] + "%2F" + m.Name
				}
				m.Name = EncodeName(m.Name)
				items = append(items, m)
			}
			continue
		}
		name, _ := decomp.StripSuffix(names[i])
		it := Item{Name: name, Obj: o, Format: fm, Size: o.Size}
		if fm.Compression != decomp.None {
			it.Key = spoolKey(o, fm, "")
			it.Size = -1
			if it.Size, err = f.knownSize(ctx, store, &it); err != nil {
				return nil, false, nil, fmt.Errorf("source %q: %w", r.Entry.Name, err)
			}
		}
		items = append(items, it)
	}
	return items, archived, problems, nil
}

// segment lays out the concatenation: for CSV whose parts share a header
// row, the header is kept once; a part that does not end in a newline gets
// one so that rows never run together.
func (f *FS) segment(ctx context.Context, p *Plan, format string) error {
	if len(p.Items) == 1 {
		p.Segments = []Segment{{Item: 0, Len: p.Items[0].Size}}
		p.Size = p.Items[0].Size
		return nil
	}
	var header []byte
	sameHeader := format == "csv"
	type partInfo struct {
		hdrLen int64
		lastNL int // 1 yes, 0 no, -1 not known yet
	}
	infos := make([]partInfo, len(p.Items))
	// the members of an archive share one open object (and a compressed
	// tar its one spool) while the plan is made
	src := newItemSource(f, p.Store)
	defer src.close()
	for i := range p.Items {
		it := &p.Items[i]
		if it.Size == 0 {
			infos[i].lastNL = 1
			continue
		}
		if err := f.recentFailure(it); err != nil {
			return err
		}
		nl, err := f.endsInNewline(ctx, src, it)
		if err != nil {
			return f.noteFailure(it, err)
		}
		infos[i].lastNL = nl
		if format == "csv" {
			h, err := f.itemFirstLine(ctx, src, it)
			if err != nil {
				return f.noteFailure(it, err)
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
	for i := range p.Items {
		it := &p.Items[i]
		off := int64(0)
		if sameHeader && i > 0 {
			off = infos[i].hdrLen
		}
		if it.Size >= 0 && it.Size-off <= 0 {
			continue
		}
		seg := Segment{Item: i, Off: off, Len: -1}
		if it.Size >= 0 {
			seg.Len = it.Size - off
		}
		p.Segments = append(p.Segments, seg)
		if i < len(p.Items)-1 {
			switch infos[i].lastNL {
			case 0:
				p.Segments = append(p.Segments, Segment{Item: -1, Literal: []byte("\n"), Len: 1})
			case -1:
				p.Segments = append(p.Segments, Segment{Item: -1, Literal: []byte("\n"), Len: -1, Cond: true})
			}
		}
	}
	for _, s := range p.Segments {
		if s.Len < 0 {
			size = -1
			break
		}
		size += s.Len
	}
	p.Size = size
	return nil
}

// failureMemo is how long a plan remembers that an item's first line or
// last byte could not be had for good (damage; decompressed data over the
// cache limit): plans are remade at every lookup once their entry times
// out, and without it each would decompress the item again, up to the
// limit, evicting other spools to make room.
const failureMemo = time.Minute

type itemFailure struct {
	err error
	at  time.Time
}

func (f *FS) recentFailure(it *Item) error {
	if v, ok := f.spools.recall("fail\x00" + itemID(it)); ok {
		if fl := v.(itemFailure); time.Since(fl.at) < failureMemo {
			return fl.err
		}
	}
	return nil
}

// noteFailure remembers err for the item if it is for good, and gives it.
func (f *FS) noteFailure(it *Item, err error) error {
	if errors.Is(err, decomp.ErrCorrupt) || errors.Is(err, decomp.ErrSpoolFull) {
		f.spools.remember("fail\x00"+itemID(it), itemFailure{err, time.Now()})
	}
	return err
}

// endsInNewline reads an item's last byte where that is cheap: an object
// or a member stored as it is. A decompressed item's is not known until
// it has been decompressed (-1).
func (f *FS) endsInNewline(ctx context.Context, src *itemSource, it *Item) (int, error) {
	var last []byte
	var err error
	switch {
	case it.raw():
		last, err = readSmall(ctx, src.store, it.Obj.URL, it.Obj.Size-1, 1)
	case it.Key == "" && it.Member != nil:
		var r *itemReader
		if r, err = src.reader(ctx, it); err == nil {
			var b [1]byte
			n, rerr := r.readAt(ctx, b[:], it.Base+it.Size-1)
			r.Close()
			if rerr != nil && !errors.Is(rerr, io.EOF) {
				err = rerr
			}
			last = b[:n] // none: an archive cut short, read as no newline
		}
	default:
		if v, ok := f.spools.recall("lastnl\x00" + itemID(it)); ok {
			return v.(int), nil
		}
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	if len(last) == 1 && last[0] == '\n' {
		return 1, nil
	}
	return 0, nil
}

// itemID names an item's bytes across plans.
func itemID(it *Item) string {
	id := it.Obj.URL + "\x00" + it.Obj.Identity() + "\x00" + it.Key
	if it.Member != nil {
		id += "\x00" + it.Member.Name + "\x00" + strconv.FormatInt(it.Base, 10)
	}
	return id
}

// maxLine is the longest header row looked for.
const maxLine = 1 << 20

// itemFirstLine is the header row of a CSV item, with its newline. A
// compressed item is decoded only as far as its first line. What is
// remembered is a copy of the line alone: a join of many members keeps
// one short line per member.
func (f *FS) itemFirstLine(ctx context.Context, src *itemSource, it *Item) ([]byte, error) {
	if it.raw() {
		return firstLine(ctx, src.store, *it.Obj)
	}
	mk := "header\x00" + itemID(it)
	if v, ok := f.spools.recall(mk); ok {
		return v.([]byte), nil
	}
	var b []byte
	if it.Key == "" || it.Member != nil && it.Format.Archive == decomp.Tar {
		ir, err := src.reader(ctx, it)
		if err != nil {
			return nil, err
		}
		base, size := ir.bounds()
		b, err = readFirstLine(func(p []byte, off int64) (int, error) {
			if size >= 0 {
				if off >= size {
					return 0, io.EOF
				}
				p = p[:min(int64(len(p)), size-off)]
			}
			return ir.readAt(ctx, p, base+off)
		})
		ir.Close()
		if err != nil {
			return nil, err
		}
	} else {
		rc, err := src.stream(ctx, it)
		if err != nil {
			return nil, err
		}
		b, err = readLine(rc, maxLine)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", it.Obj.URL, err)
		}
	}
	b = lineCopy(b)
	f.spools.remember(mk, b)
	return b, nil
}

// lineCopy is b up to and with its first newline (all of b without one),
// copied to a slice of its own size.
func lineCopy(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	}
	out := make([]byte, len(b))
	copy(out, b)
	return out
}

// readFirstLine reads from offset 0 up to the first newline, at most
// maxLine bytes: a small read first, larger ones only for a longer line.
func readFirstLine(readAt func(p []byte, off int64) (int, error)) ([]byte, error) {
	buf := make([]byte, 4<<10)
	n := 0
	for {
		k, err := readAt(buf[n:], int64(n))
		if k > 0 && bytes.IndexByte(buf[n:n+k], '\n') >= 0 {
			return buf[:n+k], nil
		}
		n += k
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if errors.Is(err, io.EOF) || k == 0 || n >= maxLine {
			return buf[:n], nil
		}
		if n == len(buf) {
			nb := make([]byte, min(4*len(buf), maxLine))
			copy(nb, buf[:n])
			buf = nb
		}
	}
}

// readLine reads a stream up to its first newline, at most max bytes.
func readLine(r io.Reader, max int) ([]byte, error) {
	var buf []byte
	chunk := make([]byte, 4<<10)
	for len(buf) < max {
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if bytes.IndexByte(chunk[:n], '\n') >= 0 || errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(chunk) < 64<<10 {
			chunk = make([]byte, 2*len(chunk))
		}
	}
	return buf, nil
}

func readSmall(ctx context.Context, s remote.Store, url string, off, n int64) ([]byte, error) {
	rc, err := s.ReadRange(ctx, url, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, n))
}

// firstLine is the header row of a CSV part, with its newline: a small
// read, and up to maxLine bytes only for a longer line.
func firstLine(ctx context.Context, s remote.Store, o remote.ObjectInfo) ([]byte, error) {
	n := min(o.Size, 4<<10)
	b, err := readSmall(ctx, s, o.URL, 0, n)
	if err != nil {
		return nil, err
	}
	if bytes.IndexByte(b, '\n') < 0 && o.Size > n {
		if b, err = readSmall(ctx, s, o.URL, 0, min(o.Size, maxLine)); err != nil {
			return nil, err
		}
	}
	return lineCopy(b), nil
}

func sortInfos(objs []remote.ObjectInfo) {
	sort.SliceStable(objs, func(i, j int) bool { return objs[i].URL < objs[j].URL })
}

// crcMemo remembers, for one zip object version, the CRC-32 checks of its
// stored members (read in place, so no decoder checks them): the results,
// and the running sums of members being read from their start, so that a
// reader that reads a member through costs no second read at its end.
type crcMemo struct {
	mu   sync.Mutex
	done map[int64]error // by where the member's bytes start in the zip
	runs map[int64]*crcRun
}

// crcRun is the CRC-32 of a member's bytes [0, next).
type crcRun struct {
	mu   sync.Mutex
	next int64
	sum  uint32
}

// crcGap is how far ahead of the bytes summed a read may start and still
// be summed (the gap is read for it): a CSV join leaves out the header of
// every member after the first.
const crcGap = 64 << 10

var crcMemoMu sync.Mutex // makes crcMemo's recall-or-remember one step

func (f *FS) crcMemo(obj *remote.ObjectInfo) *crcMemo {
	mk := "crc\x00" + obj.URL + "\x00" + obj.Identity() + "\x00" + strconv.FormatInt(obj.Size, 10)
	crcMemoMu.Lock()
	defer crcMemoMu.Unlock()
	if v, ok := f.spools.recall(mk); ok {
		return v.(*crcMemo)
	}
	m := &crcMemo{done: map[int64]error{}, runs: map[int64]*crcRun{}}
	f.spools.remember(mk, m)
	return m
}

// crcFeed sums bytes of a stored zip member read at off, when they carry
// on (or nearly) from the bytes summed so far.
func (f *FS) crcFeed(ctx context.Context, r *itemReader, off int64, p []byte) {
	m := f.crcMemo(r.it.Obj)
	base := r.it.Base
	m.mu.Lock()
	if _, done := m.done[base]; done {
		m.mu.Unlock()
		return
	}
	run := m.runs[base]
	if run == nil {
		if off > crcGap {
			m.mu.Unlock()
			return
		}
		run = &crcRun{}
		m.runs[base] = run
	}
	m.mu.Unlock()
	run.mu.Lock()
	defer run.mu.Unlock()
	if off > run.next && off-run.next <= crcGap {
		gap := make([]byte, off-run.next)
		if n, _ := r.readAt(ctx, gap, base+run.next); n == len(gap) {
			run.sum = crc32.Update(run.sum, crc32.IEEETable, gap)
			run.next = off
		}
	}
	if off <= run.next && off+int64(len(p)) > run.next {
		run.sum = crc32.Update(run.sum, crc32.IEEETable, p[run.next-off:])
		run.next = off + int64(len(p))
	}
}

// crcCheck is the CRC-32 check of a stored zip member, done once per
// object version and member (the bytes not summed as they were read are
// read for it): nil, or an error matching decomp.ErrCorrupt. An I/O error
// on the way is returned and not remembered.
func (f *FS) crcCheck(ctx context.Context, r *itemReader) error {
	m := f.crcMemo(r.it.Obj)
	base, mem := r.it.Base, r.it.Member
	m.mu.Lock()
	if err, done := m.done[base]; done {
		m.mu.Unlock()
		return err
	}
	run := m.runs[base]
	if run == nil {
		run = &crcRun{}
		m.runs[base] = run
	}
	m.mu.Unlock()
	run.mu.Lock()
	defer run.mu.Unlock()
	m.mu.Lock()
	err, done := m.done[base] // another reader finished it meanwhile
	m.mu.Unlock()
	if done {
		return err
	}
	if run.next < mem.Size {
		buf := make([]byte, min(256<<10, mem.Size-run.next))
		for run.next < mem.Size {
			want := min(int64(len(buf)), mem.Size-run.next)
			n, err := r.readAt(ctx, buf[:want], base+run.next)
			run.sum = crc32.Update(run.sum, crc32.IEEETable, buf[:n])
			run.next += int64(n)
			if int64(n) < want {
				if err == nil || errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("zip member %q: checking its CRC-32: %w", mem.Name, err)
			}
		}
	}
	if run.sum != mem.CRC32 {
		err = &decomp.CorruptError{Format: decomp.None, Offset: mem.Size, InputOffset: base + mem.Size,
			Err: fmt.Errorf("zip member %q: CRC-32 mismatch (%08x, recorded %08x)", mem.Name, run.sum, mem.CRC32)}
	}
	m.mu.Lock()
	m.done[base] = err
	delete(m.runs, base)
	m.mu.Unlock()
	return err
}

// tarDamage logs and describes damage that cut the listing of a tar
// short: where it is (the offset in the tar as decompressed), and that
// the members after it are missing.
func (f *FS) tarDamage(obj *remote.ObjectInfo, fm decomp.Format, err error) string {
	at := int64(-1)
	var ce *decomp.CorruptError
	if errors.As(err, &ce) {
		at = ce.Offset
	}
	what := "damaged"
	if errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "truncated") {
		what = "truncated"
		if fm.Compression == decomp.None {
			at = obj.Size // a plain tar ends where the object does
		}
	}
	shown := remote.RedactURL(obj.URL)
	f.Log.Error("archive "+what+": the members after the damage are missing", "archive", shown, "offset", at, "err", err.Error())
	return fmt.Sprintf("%s: the archive is %s at offset %d: members after it are missing, the one there fails where its bytes end (%v)", shown, what, at, err)
}
