package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/intakefs/intakefs/cache"
	"github.com/intakefs/intakefs/cache/decomp"
	"github.com/intakefs/intakefs/remote"
)

// listing is a catalog directory's index: every name it shows, built once
// per view and reused for TTL.
type listing struct {
	cat   *Catalog
	at    time.Time
	names map[string]Node
	order []Node
	// byKey are the listed data files by their rendered key, so that any
	// other spelling of the same values is the same node (and inode).
	byKey map[string]Node
	// problems are what errors.txt adds to the catalog's load errors.
	problems []string
	// took is how long the listing took to build.
	took time.Duration
	// prefetched: built ahead of use (see prefetch.go) and not used yet.
	// Such a listing is never changed: its first use replaces it in
	// FS.listings with a copy that is not.
	prefetched bool
}

// ttl is how long a listing is reused: the FS's TTL, but at least four
// times what it took to build, so that a catalog of tens of thousands of
// sources is not rebuilt on every lookup.
func (l *listing) ttl(base time.Duration) time.Duration {
	if l.took > 250*time.Millisecond && 4*l.took > base {
		return 4 * l.took
	}
	return base
}

// catalogDir is a catalog: the root, or a nested catalog entry reached
// with the parameter values in kvs.
type catalogDir struct {
	fs     *FS
	name   string
	ident  string
	parent *View // nil for the root
	entry  *Entry
	kvs    []KV
}

var _ Dir = (*catalogDir)(nil)

func (d *catalogDir) Name() string { return d.name }
func (d *catalogDir) IsDir() bool  { return true }
func (d *catalogDir) Ino() uint64 {
	if d.parent == nil {
		return 1
	}
	return inoOf("cat:" + d.ident)
}

func (d *catalogDir) view(ctx context.Context) (*View, error) {
	if d.parent == nil {
		return d.fs.rootView(), nil
	}
	return d.fs.childView(ctx, d.parent, d.entry, d.kvs)
}

func (d *catalogDir) listing(ctx context.Context) (*View, *listing, error) {
	v, err := d.view(ctx)
	if err != nil {
		return nil, nil, err
	}
	f := d.fs
	ahead := isPrefetch(ctx)
	f.mu.Lock()
	if l := f.listings[v.Ident]; l != nil && l.cat == v.Cat {
		fresh := time.Since(l.at) < l.ttl(f.TTL)
		if l.prefetched {
			fresh = time.Since(l.at) < prefetchFresh
		}
		if fresh {
			if !ahead {
				l = f.claimLocked(v.Ident, l)
			}
			f.mu.Unlock()
			return v, l, nil
		}
	}
	f.mu.Unlock()
	for {
		// Concurrent first lookups in one directory build its listing
		// once, and a reader joins a build ahead in progress.
		built, _, _ := f.flight.Do("listing\x00"+v.Ident, func() (any, error) {
			l := f.buildListing(ctx, d, v)
			if l == nil {
				return l, nil // a build ahead that gave up (see prefetch.go)
			}
			l.prefetched = ahead
			f.mu.Lock()
			if len(f.listings) > 10000 {
				f.listings = map[string]*listing{}
				f.prefetch.forgetUnused()
			}
			if old := f.listings[v.Ident]; old != nil && old.prefetched {
				f.prefetch.used()
			}
			f.listings[v.Ident] = l
			if ahead {
				f.prefetch.built()
			}
			f.mu.Unlock()
			return l, nil
		})
		l := built.(*listing)
		if ahead {
			return v, l, nil
		}
		if l == nil {
			continue // joined a build ahead that gave up: build it here
		}
		if l.prefetched {
			f.mu.Lock()
			l = f.claimLocked(v.Ident, l)
			f.mu.Unlock()
		}
		return v, l, nil
	}
}

// claimLocked is the first use of a listing: one built ahead is replaced
// by a copy that counts as built now. f.mu held.
func (f *FS) claimLocked(ident string, l *listing) *listing {
	if !l.prefetched {
		return l
	}
	c := *l
	c.prefetched = false
	c.at = time.Now()
	if f.listings[ident] == l {
		f.listings[ident] = &c
		f.prefetch.used()
	}
	return &c
}

func (d *catalogDir) ReadDir(ctx context.Context) ([]Node, error) {
	_, l, err := d.listing(ctx)
	if err != nil {
		return nil, err
	}
	// a reader that lists a catalog is likely to walk into its nested
	// catalogs next
	d.fs.prefetchChildren(l)
	return l.order, nil
}

func (d *catalogDir) Lookup(ctx context.Context, name string) (Node, error) {
	v, l, err := d.listing(ctx)
	if err != nil {
		return nil, err
	}
	if n, ok := l.names[name]; ok {
		return n, nil
	}
	if !strings.Contains(name, "@") {
		return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	pn, err := ParseName(name)
	if err != nil {
		return nil, &ParamError{"", err.Error()}
	}
	e := v.Cat.Lookup(pn.Name)
	if e == nil {
		return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	if e.IsCatalog() {
		sub := &catalogDir{fs: d.fs, name: name, parent: v, entry: e, kvs: pn.KVs}
		sub.ident = v.Ident + "/" + e.Name + canonKVs(pn.KVs)
		cv, err := sub.view(ctx)
		if err != nil {
			return nil, err
		}
		if cv.Err != nil {
			var pe *ParamError
			if errors.As(cv.Err, &pe) {
				return nil, cv.Err
			}
		}
		return sub, nil
	}
	n, err := d.fs.lookupSource(ctx, v, e, name, pn)
	if df, ok := n.(*dataFile); ok && df.r != nil {
		if listed := l.byKey[df.r.Key()]; listed != nil {
			return listed, nil // the same values, spelled another way
		}
	}
	return n, err
}

// lookupSource resolves src@k=v[.ext]: with the extension it is the data,
// without it the source's directory. A value may hold dots, so the suffix
// is an extension only when it is the one the source has for those values;
// a dot written %2E is never one.
func (f *FS) lookupSource(ctx context.Context, v *View, e *Entry, name string, pn ParsedName) (Node, error) {
	kvs := pn.KVs
	if i := strings.LastIndexByte(pn.RawLast, '.'); i >= 0 {
		try := append([]KV(nil), kvs...)
		last, uerr := Unescape(pn.RawLast[:i])
		try[len(try)-1].Value = last
		ext := pn.RawLast[i+1:]
		user, err := f.userValues(v, e, try)
		if uerr != nil {
			err = uerr
		}
		var r *Rendered
		if err == nil {
			r, err = f.Env.Render(v, e, user)
		}
		if err == nil && dataExt(r) == ext {
			return f.dataNode(ctx, v, e, name, r, nil), nil
		}
		// A bad value with the source's usual extension is reported as
		// such, not as a bad value that happens to end in ".csv".
		if err != nil && isParamErr(err) && ext == f.defaultExt(v, e) {
			return nil, err
		}
	}
	user, err := f.userValues(v, e, kvs)
	if err != nil {
		return nil, err
	}
	r, err := f.Env.Render(v, e, user)
	if err != nil {
		return nil, err
	}
	return &sourceDir{fs: f, name: name, r: r}, nil
}

// defaultExt is the extension a source has at its default values.
func (f *FS) defaultExt(v *View, e *Entry) string {
	if r, err := f.Env.Render(v, e, nil); err == nil {
		return dataExt(r)
	}
	if x, ok := driverExt[e.Driver]; ok {
		return x
	}
	return "data"
}

func isParamErr(err error) bool {
	var pe *ParamError
	return errors.As(err, &pe)
}

// userValues converts path values to typed values, refusing unknown and
// repeated names.
func (f *FS) userValues(v *View, e *Entry, kvs []KV) (map[string]any, error) {
	params := v.paramsFor(e)
	out := map[string]any{}
	for _, kv := range kvs {
		if _, dup := out[kv.Key]; dup {
			return nil, &ParamError{kv.Key, fmt.Sprintf("parameter %s given twice", kv.Key)}
		}
		p := findParam(params, kv.Key)
		if p == nil {
			return nil, &ParamError{kv.Key, fmt.Sprintf("unknown parameter %q for %s (it has: %s)", kv.Key, e.Name, paramNames(params))}
		}
		val, err := p.FromPath(kv.Value)
		if err != nil {
			return nil, err
		}
		out[kv.Key] = val
	}
	return out, nil
}

func (f *FS) buildListing(ctx context.Context, d *catalogDir, v *View) *listing {
	start := time.Now()
	l := &listing{cat: v.Cat, at: start, names: map[string]Node{}, byKey: map[string]Node{}}
	add := func(n Node, what string) {
		if prev, dup := l.names[n.Name()]; dup {
			_ = prev
			l.problems = append(l.problems, fmt.Sprintf("%s: the name %q is taken by another entry; not shown", what, n.Name()))
			return
		}
		l.names[n.Name()] = n
		if df, ok := n.(*dataFile); ok && df.r != nil {
			l.byKey[df.r.Key()] = n
		}
		l.order = append(l.order, n)
	}
	add(&metaDir{fs: f, dir: d, view: v, listing: l}, ".catalog")
	// Entries are built concurrently, a bounded number at a time: planning
	// a remote source is a request, and one slow or dead server must not
	// hold up every other entry of the directory behind it.
	type built struct {
		nodes    []Node
		where    string
		problems []string
		skip     bool // a build ahead of use met what only a reader may pay for
	}
	results := make([]built, len(v.Cat.Entries))
	par := listingParallelism
	if isPrefetch(ctx) {
		// nothing remote to wait for, and a walk in progress wants the
		// other core: one entry at a time, on the builder's goroutine
		par = 1
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i, e := range v.Cat.Entries {
		if e.Name == "" {
			results[i].problems = []string{fmt.Sprintf("%s:%d: a source with an empty name cannot be shown", e.File, e.Line)}
			continue
		}
		results[i].where = fmt.Sprintf("%s:%d: source %q", e.File, e.Line, e.Name)
		if e.IsCatalog() {
			results[i].nodes = []Node{&catalogDir{fs: f, name: EncodeName(e.Name), ident: v.Ident + "/" + e.Name, parent: v, entry: e}}
			continue
		}
		if par == 1 {
			if ctx.Err() != nil {
				return nil // the FS is closing
			}
			results[i].nodes, results[i].problems, results[i].skip = f.entryNodes(ctx, v, e, results[i].where)
			if results[i].skip {
				return nil
			}
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, e *Entry) {
			defer func() { <-sem; wg.Done() }()
			results[i].nodes, results[i].problems, results[i].skip = f.entryNodes(ctx, v, e, results[i].where)
		}(i, e)
	}
	wg.Wait()
	for _, b := range results {
		if b.skip {
			return nil
		}
	}
	// stamped when done: a build that takes longer than the TTL must not
	// be stale on arrival
	l.at = time.Now()
	l.took = l.at.Sub(start)
	for _, b := range results {
		l.problems = append(l.problems, b.problems...)
		// a source whose name is taken is left out whole: its data file
		// or directory alone, without the other, would be half a source
		taken := ""
		for _, n := range b.nodes {
			if _, dup := l.names[n.Name()]; dup {
				taken = n.Name()
				break
			}
		}
		if taken != "" {
			l.problems = append(l.problems, fmt.Sprintf("%s: the name %q is taken by another entry; not shown", b.where, taken))
			continue
		}
		for _, n := range b.nodes {
			add(n, b.where)
		}
	}
	return l
}

// listingParallelism bounds the entries of one directory built at once.
const listingParallelism = 16

// entryNodes are the names one source shows: its directory, its data and
// the data of its allowed variants. skip: this is a build ahead of use
// (isPrefetch) and the source would cost what only a reader may spend (a
// request, a decompression): nothing was built.
func (f *FS) entryNodes(ctx context.Context, v *View, e *Entry, where string) (nodes []Node, problems []string, skip bool) {
	shown := EncodeName(e.Name)
	r, err := f.Env.Render(v, e, nil)
	if err != nil {
		ext := "data"
		if x, ok := driverExt[e.Driver]; ok {
			ext = x
		}
		return []Node{
			&sourceDir{fs: f, name: shown, view: v, entry: e, err: err},
			&dataFile{fs: f, name: shown + "." + ext, ident: v.Ident + "/" + e.Name, err: err},
		}, []string{fmt.Sprintf("%s: with its default parameters: %s", where, strings.TrimPrefix(err.Error(), where+": "))}, false
	}
	_, _, hasData := urlArg(r)
	if hasData && f.notAhead(ctx, r) {
		return nil, nil, true
	}
	// describe.yaml and metadata.json are made here, in parallel with the
	// other entries, while the reader waits for this listing anyway: a
	// walk stats both in every source directory next, one request at a
	// time (10% off a find of 10,000 sources on 2 cores)
	r.files()
	nodes = []Node{&sourceDir{fs: f, name: shown, r: r}}
	if !hasData {
		// no data to show: the directory describes it, and says why when
		// a data argument is there but is no path
		if k, bad := badURLArg(r); bad {
			problems = append(problems, fmt.Sprintf("%s: argument %s is %s, not a path or a list of paths: no data file", where, k, pyRepr(r.Args[k])))
		}
		return nodes, problems, false
	}
	def := f.dataNode(ctx, v, e, shown+"."+dataExt(r), r, nil)
	nodes = append(nodes, def)
	if p, err := f.plan(ctx, r); err != nil {
		if msg := err.Error(); strings.HasPrefix(msg, where) {
			problems = append(problems, msg) // it names the entry already
		} else {
			problems = append(problems, fmt.Sprintf("%s: its data: %v", where, err))
		}
	} else {
		for _, pr := range p.Problems {
			problems = append(problems, fmt.Sprintf("%s: its data: %s", where, pr))
		}
	}
	if len(def.Name()) > 255 {
		problems = append(problems, fmt.Sprintf("%s: the name %q is longer than 255 bytes: many tools cannot copy it", where, def.Name()))
	}
	vars := f.variants(v, e, r)
	if _, isFile := def.(*dataFile); !isFile {
		// a directory of parts: its variants must be planned to be shown
		for i, n := range vars {
			if lz, ok := n.(*dataFile); ok {
				if f.notAhead(ctx, lz.r) {
					return nil, nil, true
				}
				vars[i] = f.dataNode(ctx, v, e, lz.name, lz.r, nil)
			}
		}
	}
	return append(nodes, vars...), problems, false
}

// variants are the data files for the values of parameters with an
// allowed list, other parameters at their defaults, up to MaxVariants.
func (f *FS) variants(v *View, e *Entry, def *Rendered) []Node {
	var ps []*Param
	for _, p := range def.Params {
		if len(p.Allowed) > 0 && p.Type != "mlist" {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return nil
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	var out []Node
	var rec func(i int, kvs []KV, user map[string]any)
	rec = func(i int, kvs []KV, user map[string]any) {
		if len(out) >= f.MaxVariants {
			return
		}
		if i == len(ps) {
			if len(kvs) == 0 {
				return
			}
			r, err := f.Env.Render(v, e, user)
			if err != nil {
				return
			}
			name := FormatName(e.Name, kvs, dataExt(r))
			// Variants are planned when first used, not for the listing:
			// up to 64 requests per source otherwise.
			out = append(out, &dataFile{fs: f, name: name, ident: "data:" + r.Key(), r: r, lazy: true})
			return
		}
		p := ps[i]
		rec(i+1, kvs, user)
		for _, a := range p.Allowed {
			val, err := p.Validate(a)
			if err != nil || equalValues(val, def.Values[p.Name]) {
				continue
			}
			nu := copyMap(user)
			nu[p.Name] = val
			rec(i+1, append(append([]KV(nil), kvs...), KV{p.Name, pyStr(val)}), nu)
		}
	}
	rec(0, nil, map[string]any{})
	return out
}

// dataNode is the data of a rendered source: a file, or a directory of
// parts for formats that do not concatenate.
func (f *FS) dataNode(ctx context.Context, v *View, e *Entry, name string, r *Rendered, _ error) Node {
	p, err := f.plan(ctx, r)
	ident := "data:" + r.Key()
	if err != nil {
		return &dataFile{fs: f, name: name, ident: ident, r: r}
	}
	// The objects' identities are part of the inode's, so a changed
	// object is a new inode and the kernel's cached pages of the old one
	// are never served for it (see KeepCache).
	ident += p.identity()
	switch p.Kind {
	case PlanParts:
		return &partsDir{fs: f, name: name, ident: ident, plan: p}
	case PlanTree:
		return &treeDir{fs: f, name: name, ident: ident, store: p.Store, url: p.Root}
	}
	return &dataFile{fs: f, name: name, ident: ident, r: r, plan: p}
}

// ErrStale is a file whose objects changed since it was looked up: the
// kernel looks the name up again and gets the new version.
var ErrStale = errors.New("the data changed since this file was looked up")

// dataFile is a source's data as one file.
type dataFile struct {
	fs    *FS
	name  string
	ident string
	r     *Rendered
	err   error // the source cannot be rendered
	// plan is pinned at lookup: one inode is one version of the data.
	plan *Plan
	// lazy: the plan is made (and pinned) on first use; the inode then
	// carries no object identity, so the kernel may not keep its cache.
	lazy     bool
	lazyOnce sync.Once
	// opens counts the open handles (see Stat).
	opens atomic.Int32
}

// pinned is the plan this node serves, making it on first use for a lazy
// node.
func (d *dataFile) pinned(ctx context.Context) *Plan {
	if d.lazy {
		d.lazyOnce.Do(func() {
			if p, err := d.fs.plan(ctx, d.r); err == nil && p.Kind == PlanFile {
				d.plan = p
			}
		})
	}
	return d.plan
}

var _ File = (*dataFile)(nil)

func (d *dataFile) Name() string { return d.name }
func (d *dataFile) IsDir() bool  { return false }
func (d *dataFile) Ino() uint64  { return inoOf(d.ident) }

// Stat never fails for a listed source: a source whose data cannot be
// reached shows size 0 and fails on open with the reason, so that ls and
// find work over a catalog with broken entries. Data whose size is not
// known before it is decompressed shows 0 until it has been read once
// (it is opened with direct I/O meanwhile: see DirectIO).
func (d *dataFile) Stat(ctx context.Context) (FileStat, error) {
	if d.err != nil {
		return FileStat{ModTime: d.fs.Started}, nil
	}
	p := d.pinned(ctx)
	if p == nil {
		return FileStat{ModTime: d.fs.Started}, nil
	}
	size := d.fs.statSize(ctx, p, d.opens.Load() > 0)
	return FileStat{Size: size, ModTime: latest(p.Parts, d.fs.Started)}, nil
}

// statSize is what stat shows for a file plan. Where the size is not
// known before decompressing, a file nobody has open shows 0 (ls stays
// fast); once it is open, a stat (the reader's fstat) waits until the
// data has been decompressed to its end and gets the exact size, so
// that readers that trust st_size (DuckDB; cat, whose copy_file_range
// stops at it) read all of it. A stream damaged before its end shows the
// bytes before the damage plus one: a reader then reaches the damage and
// gets EIO rather than a quietly short file.
func (f *FS) statSize(ctx context.Context, p *Plan, open bool) int64 {
	size, ok := f.currentSize(p)
	if ok || !open {
		return size
	}
	h, err := f.openPlan(ctx, p)
	if err != nil {
		return 0
	}
	defer h.Close()
	return h.waitSize(ctx)
}

// waitSize resolves every segment's length, decompressing to the end of
// each stream whose size is not known.
func (h *segHandle) waitSize(ctx context.Context) int64 {
	var size int64
	for i, s := range h.plan.Segments {
		l, err := h.segLen(ctx, i)
		if err == nil && l < 0 && s.Item >= 0 {
			var damaged int64
			if l, damaged, err = h.fillLen(ctx, i); err == nil && damaged >= 0 {
				return size + damaged + 1
			}
			if l >= 0 {
				h.setLen(i, l)
			}
		}
		if err != nil || l < 0 {
			return size
		}
		size += l
	}
	return size
}

// fillLen decompresses segment i's stream to its end, to learn its
// length (-1 for a segment not read from a spool); for a damaged stream,
// damaged is how many of the segment's bytes come before the damage (-1
// when there is none).
func (h *segHandle) fillLen(ctx context.Context, i int) (l int64, damaged int64, err error) {
	s := h.plan.Segments[i]
	r, err := h.reader(ctx, s.Item)
	if err != nil {
		return -1, -1, err
	}
	defer r.Close()
	if r.spool == nil {
		return -1, -1, nil
	}
	n, err := r.spool.Fill(ctx)
	if err == nil {
		return n - s.Off, -1, nil
	}
	if errors.Is(err, decomp.ErrCorrupt) {
		r.logCorrupt(err, r.spool.Spooled())
		return -1, max(r.spool.Spooled()-s.Off, 0), nil
	}
	if errors.Is(err, decomp.ErrSpoolFull) {
		// as damage: the size shown ends one byte past what can be
		// read, so a reader gets the error rather than a short file
		return -1, max(r.spool.Spooled()-s.Off, 0), nil
	}
	return -1, -1, err
}

// DirectIO: while the size is not known the kernel must not trust it,
// and every read comes here, to the end of the data.
func (d *dataFile) DirectIO() bool {
	if d.err != nil || d.plan == nil && !d.lazy {
		return false
	}
	p := d.pinned(context.Background())
	if p == nil {
		return false
	}
	_, ok := d.fs.currentSize(p)
	return !ok
}

// currentSize is a file plan's size as far as it is known now: sizes of
// streams learned since planning (complete spools) fill in the gaps.
func (f *FS) currentSize(p *Plan) (int64, bool) {
	if p.Size >= 0 {
		return p.Size, true
	}
	var size int64
	for i, s := range p.Segments {
		n, ok := f.segLenKnown(p, i)
		if !ok {
			return 0, false
		}
		_ = s
		size += n
	}
	return size, true
}

// segLenKnown is a segment's length if it is known without reading.
func (f *FS) segLenKnown(p *Plan, i int) (int64, bool) {
	s := p.Segments[i]
	if s.Len >= 0 {
		return s.Len, true
	}
	if s.Cond {
		v, ok := f.spools.recall("lastnl\x00" + itemID(&p.Items[p.Segments[i-1].Item]))
		if !ok {
			return 0, false
		}
		return int64(1 - v.(int)), true
	}
	it := &p.Items[s.Item]
	if it.Member != nil {
		return it.Member.Size - s.Off, true
	}
	if n, ok := f.spools.size(it.Key); ok {
		return n - s.Off, true
	}
	return 0, false
}

// KeepCache: the kernel may keep this file's pages across opens, because
// its inode number changes with the identity of the objects behind it.
func (d *dataFile) KeepCache() bool { return d.err == nil && !d.lazy && d.plan != nil }

func (d *dataFile) Open(ctx context.Context) (Handle, error) {
	if d.err != nil {
		return nil, d.err
	}
	p, err := d.fs.plan(ctx, d.r)
	if err != nil {
		return nil, err
	}
	pinned := d.pinned(ctx)
	if pinned == nil || p.Kind != PlanFile || p.identity() != pinned.identity() {
		d.fs.forget(d.r)
		return nil, fmt.Errorf("%s: %w", d.name, ErrStale)
	}
	h, err := d.fs.openPlan(ctx, pinned)
	if err != nil {
		if errors.Is(err, remote.ErrChanged) || errors.Is(err, remote.ErrNotExist) {
			d.fs.forget(d.r)
			return nil, fmt.Errorf("%s: %w (%v)", d.name, ErrStale, err)
		}
		return nil, err
	}
	d.opens.Add(1)
	h.onClose = func() { d.opens.Add(-1) }
	return h, nil
}

// openPlan opens every object of a file plan now (once, however many of
// its members the file has): an open file then holds the versions it was
// planned with, and an object replaced later cannot mix in. The spools of
// decompressed streams are acquired now too, up to maxIdleSpools of them;
// the others when first read.
func (f *FS) openPlan(ctx context.Context, p *Plan) (*segHandle, error) {
	h := &segHandle{fs: f, plan: p, src: newItemSource(f, p.Store), lens: make([]int64, len(p.Segments))}
	keys := map[string]bool{}
	for i, s := range p.Segments {
		h.lens[i] = s.Len
		if s.Item < 0 {
			continue
		}
		it := &p.Items[s.Item]
		var err error
		switch {
		case it.Key == "":
			_, err = h.src.raw(ctx, it.Obj)
		case !keys[it.Key] && len(keys) < maxIdleSpools:
			keys[it.Key] = true
			var r *itemReader
			if r, err = h.reader(ctx, s.Item); err == nil {
				r.Close() // kept acquired by h.src
			}
		}
		if err != nil {
			h.Close()
			return nil, err
		}
	}
	return h, nil
}

func latest(objs []remote.ObjectInfo, def time.Time) time.Time {
	var t time.Time
	for _, o := range objs {
		if o.ModTime.After(t) {
			t = o.ModTime
		}
	}
	if t.IsZero() {
		return def
	}
	return t
}

// segHandle reads a plan's segments. Lengths not known at planning (a
// stream that records no size) are learned as the reads reach the end of
// each stream.
type segHandle struct {
	fs   *FS
	plan *Plan
	// src lends the readers of the items (each read gives its back)
	src *itemSource
	mu  sync.Mutex // guards lens and local; not held while reading or opening
	// lens are the segments' lengths, -1 until known.
	lens  []int64
	local *os.File // a complete spool opened for passthrough
	// onClose, if set, is called once by Close.
	onClose func()
}

// reader lends a reader of item i; Close gives it back.
func (h *segHandle) reader(ctx context.Context, i int) (*itemReader, error) {
	return h.src.reader(ctx, &h.plan.Items[i])
}

// segLen is segment i's length, resolving what can be resolved now: a
// stream that has reached its end, the newline after it.
func (h *segHandle) segLen(ctx context.Context, i int) (int64, error) {
	h.mu.Lock()
	n := h.lens[i]
	h.mu.Unlock()
	if n >= 0 {
		return n, nil
	}
	if n, ok := h.fs.segLenKnown(h.plan, i); ok {
		h.setLen(i, n)
		return n, nil
	}
	s := h.plan.Segments[i]
	if !s.Cond {
		return -1, nil
	}
	// The newline's turn comes after its item was read to the end.
	prev := h.plan.Segments[i-1]
	plen, err := h.segLen(ctx, i-1)
	if err != nil || plen < 0 {
		return -1, err
	}
	it := &h.plan.Items[prev.Item]
	nl := 1
	if size := prev.Off + plen; size > 0 {
		r, err := h.reader(ctx, prev.Item)
		if err != nil {
			return -1, err
		}
		var b [1]byte
		_, err = r.ReadAt(ctx, b[:], size-1)
		r.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return -1, err
		}
		if b[0] == '\n' {
			nl = 0
		}
	} else {
		nl = 0
	}
	h.fs.spools.remember("lastnl\x00"+itemID(it), 1-nl)
	h.setLen(i, int64(nl))
	return int64(nl), nil
}

func (h *segHandle) setLen(i int, n int64) {
	h.mu.Lock()
	h.lens[i] = n
	h.mu.Unlock()
}

func (h *segHandle) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	segs := h.plan.Segments
	if h.plan.Size >= 0 && off >= h.plan.Size {
		return 0, io.EOF
	}
	var start int64 // where segment i starts
	n := 0
	for i := 0; i < len(segs) && n < len(p); i++ {
		s := segs[i]
		l, err := h.segLen(ctx, i)
		if err != nil {
			return n, err
		}
		pos := off + int64(n)
		if l >= 0 && pos >= start+l {
			start += l
			continue
		}
		within := pos - start
		want := int64(len(p) - n)
		if l >= 0 && want > l-within {
			want = l - within
		}
		if s.Item < 0 {
			n += copy(p[n:n+int(want)], s.Literal[within:])
			start += l
			continue
		}
		r, err := h.reader(ctx, s.Item)
		if err != nil {
			return n, err
		}
		got, err := r.ReadAt(ctx, p[n:n+int(want)], s.Off+within)
		size, ok := r.size()
		r.Close()
		n += got
		switch {
		case err == nil || errors.Is(err, io.EOF) && int64(got) == want && l >= 0:
			if l >= 0 && within+int64(got) == l {
				start += l
			}
		case errors.Is(err, io.EOF) && l < 0:
			// the stream ended here: now its length is known
			if !ok {
				return n, fmt.Errorf("%s: %w (the stream ended without a size)", h.plan.Items[s.Item].Obj.URL, io.ErrUnexpectedEOF)
			}
			h.setLen(i, size-s.Off)
			start += size - s.Off
		case errors.Is(err, io.EOF):
			return n, fmt.Errorf("%s: %w (object is shorter than when it was listed)", h.plan.Items[s.Item].Obj.URL, io.ErrUnexpectedEOF)
		default:
			return n, err
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

var _ Decompressor = (*segHandle)(nil)

func (h *segHandle) Decompressing() bool {
	// Only a hint for how the kernel should cache: a plan of thousands
	// of members is judged by its first streams, not hashed in full at
	// every open.
	checked := 0
	for i := range h.plan.Items {
		k := h.plan.Items[i].Key
		if k == "" || i > 0 && k == h.plan.Items[i-1].Key {
			continue
		}
		if !h.fs.spools.complete(k) {
			return true
		}
		if checked++; checked == 64 {
			break
		}
	}
	return false
}

// LocalFile is the open local file behind a handle whose content is
// exactly one local file (an object, or a complete spool of its
// decompression), for FUSE passthrough; nil otherwise.
func (h *segHandle) LocalFile(ctx context.Context) *os.File {
	segs := h.plan.Segments
	if len(segs) != 1 || segs[0].Item < 0 || segs[0].Off != 0 {
		return nil
	}
	it := &h.plan.Items[segs[0].Item]
	if it.Member != nil {
		return nil
	}
	r, err := h.reader(ctx, segs[0].Item)
	if err != nil {
		return nil
	}
	defer r.Close()
	if r.spool != nil {
		path, ok := r.spool.Complete()
		if !ok || path == "" {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return nil
		}
		h.mu.Lock()
		if h.local != nil {
			f.Close()
			f = h.local
		}
		h.local = f
		h.mu.Unlock()
		return f
	}
	if segs[0].Len != it.Obj.Size {
		return nil
	}
	if lf, ok := r.raw.(cache.LocalFiler); ok {
		return lf.LocalFile() // a remote object the cache holds in full
	}
	f, _ := r.raw.(*os.File)
	return f
}

func (h *segHandle) Close() error {
	h.mu.Lock()
	done := h.onClose
	h.onClose = nil
	local := h.local
	h.local = nil
	h.mu.Unlock()
	first := h.src.close()
	if local != nil {
		local.Close()
	}
	if done != nil {
		done()
	}
	return first
}

// partsDir holds the parts of a multi-file source under their own names.
type partsDir struct {
	fs    *FS
	name  string
	ident string
	plan  *Plan
}

var _ Dir = (*partsDir)(nil)

func (d *partsDir) Name() string { return d.name }
func (d *partsDir) IsDir() bool  { return true }
func (d *partsDir) Ino() uint64  { return inoOf(d.ident) }

// partsIndex is a directory of parts' nodes, built once per plan: the
// same node (and its count of open handles) for every listing and lookup,
// and a lookup by name that costs the same for any number of parts.
type partsIndex struct {
	ident  string
	nodes  []Node
	byName map[string]Node
}

func (d *partsDir) index() *partsIndex {
	p := d.plan
	p.partsMu.Lock()
	defer p.partsMu.Unlock()
	if ix := p.parts; ix != nil && ix.ident == d.ident {
		return ix
	}
	ix := &partsIndex{ident: d.ident, nodes: make([]Node, 0, len(p.Items)), byName: make(map[string]Node, len(p.Items))}
	for i := range p.Items {
		n := &partFile{fs: d.fs, ident: d.ident, plan: p, item: i}
		if _, dup := ix.byName[n.Name()]; dup {
			continue // archiveMembers keeps one of a name already
		}
		ix.byName[n.Name()] = n
		ix.nodes = append(ix.nodes, n)
	}
	p.parts = ix
	return ix
}

func (d *partsDir) ReadDir(ctx context.Context) ([]Node, error) {
	return d.index().nodes, nil
}

func (d *partsDir) Lookup(ctx context.Context, name string) (Node, error) {
	if n, ok := d.index().byName[name]; ok {
		return n, nil
	}
	return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
}

func lookupIn(ctx context.Context, d Dir, name string) (Node, error) {
	ns, err := d.ReadDir(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range ns {
		if n.Name() == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("%s: %w", name, ErrNotFound)
}

// partNames are the parts' base names; where two parts share one, the
// path below their common directory is used, encoded.
func partNames(parts []remote.ObjectInfo) []string {
	names := make([]string, len(parts))
	count := map[string]int{}
	for i, p := range parts {
		names[i] = path.Base(p.URL)
		count[names[i]]++
	}
	prefix := commonDir(parts)
	for i, p := range parts {
		if count[names[i]] > 1 {
			names[i] = EncodeName(strings.TrimPrefix(p.URL, prefix))
		}
	}
	return names
}

func commonDir(parts []remote.ObjectInfo) string {
	if len(parts) == 0 {
		return ""
	}
	prefix := path.Dir(parts[0].URL) + "/"
	for _, p := range parts[1:] {
		for !strings.HasPrefix(p.URL, prefix) && prefix != "/" && prefix != "" {
			prefix = path.Dir(strings.TrimSuffix(prefix, "/")) + "/"
		}
	}
	return prefix
}

// treeDir shows a directory object (a parquet dataset, a zarr store).
type treeDir struct {
	fs    *FS
	name  string
	ident string
	store remote.Store
	url   string
}

var _ Dir = (*treeDir)(nil)

func (d *treeDir) Name() string { return d.name }
func (d *treeDir) IsDir() bool  { return true }
func (d *treeDir) Ino() uint64  { return inoOf(d.ident) }

func (d *treeDir) ReadDir(ctx context.Context) ([]Node, error) {
	ents, err := d.store.List(ctx, d.url)
	if err != nil {
		return nil, err
	}
	out := make([]Node, 0, len(ents))
	for _, e := range ents {
		name := path.Base(strings.TrimSuffix(e.URL, "/"))
		if e.IsDir {
			out = append(out, &treeDir{fs: d.fs, name: name, ident: d.ident + "/" + name, store: d.store, url: e.URL})
		} else {
			out = append(out, &objFile{fs: d.fs, name: name, store: d.store, obj: e})
		}
	}
	return out, nil
}

func (d *treeDir) Lookup(ctx context.Context, name string) (Node, error) {
	return lookupIn(ctx, d, name)
}

// objFile is one object shown as it is.
type objFile struct {
	fs    *FS
	name  string
	store remote.Store
	obj   remote.ObjectInfo
}

var _ File = (*objFile)(nil)

func (o *objFile) Name() string { return o.name }
func (o *objFile) IsDir() bool  { return false }
func (o *objFile) Ino() uint64  { return inoOf("obj:" + o.obj.URL + "\x00" + o.obj.Identity()) }
func (o *objFile) Stat(ctx context.Context) (FileStat, error) {
	return FileStat{Size: o.obj.Size, ModTime: o.obj.ModTime}, nil
}

// KeepCache: as for dataFile, the inode carries the object's identity.
func (o *objFile) KeepCache() bool { return true }

func (o *objFile) Open(ctx context.Context) (Handle, error) {
	obj := o.obj
	p := &Plan{Kind: PlanFile, Store: o.store, Parts: []remote.ObjectInfo{obj}, Size: obj.Size}
	p.Items = []Item{{Name: o.name, Obj: &p.Parts[0], Size: obj.Size}}
	p.Segments = []Segment{{Item: 0, Len: obj.Size}}
	return o.fs.openPlan(ctx, p)
}

// partFile is one item of a directory of parts: an object (decompressed
// if need be) or an archive member.
type partFile struct {
	fs    *FS
	ident string
	plan  *Plan
	item  int
	opens atomic.Int32 // open handles (see FS.statSize)
}

var _ File = (*partFile)(nil)

func (o *partFile) Name() string { return o.plan.Items[o.item].Name }
func (o *partFile) IsDir() bool  { return false }
func (o *partFile) Ino() uint64  { return inoOf("part:" + o.ident + "\x00" + o.Name()) }

// single is the plan of this part alone.
func (o *partFile) single() *Plan {
	it := o.plan.Items[o.item]
	p := &Plan{Kind: PlanFile, Store: o.plan.Store, Parts: []remote.ObjectInfo{*it.Obj}, Size: it.Size}
	it.Obj = &p.Parts[0]
	p.Items = []Item{it}
	p.Segments = []Segment{{Item: 0, Len: it.Size}}
	return p
}

func (o *partFile) Stat(ctx context.Context) (FileStat, error) {
	it := &o.plan.Items[o.item]
	size := o.fs.statSize(ctx, o.single(), o.opens.Load() > 0)
	mt := it.Obj.ModTime
	if it.Member != nil && !it.Member.ModTime.IsZero() {
		mt = it.Member.ModTime
	}
	return FileStat{Size: size, ModTime: mt}, nil
}

// DirectIO: as for dataFile, while the size is not known.
func (o *partFile) DirectIO() bool {
	_, ok := o.fs.currentSize(o.single())
	return !ok
}

// KeepCache: the directory's inode (in ident) carries the objects'
// identities.
func (o *partFile) KeepCache() bool { return true }

func (o *partFile) Open(ctx context.Context) (Handle, error) {
	h, err := o.fs.openPlan(ctx, o.single())
	if err != nil {
		return nil, err
	}
	o.opens.Add(1)
	h.onClose = func() { o.opens.Add(-1) }
	return h, nil
}

// itemSource opens the items of one plan for one user (an open file, or
// the making of a plan), sharing what items have in common: one open
// reader per object read in place, however many members of it there are,
// and one spool per decompressed stream (every member of a compressed
// tar). Spools of streams of their own (compressed zip members) are
// acquired when first read, and at most maxIdleSpools that nobody is
// reading stay acquired, so a file of any number of members holds a
// bounded number of descriptors.
type itemSource struct {
	fs    *FS
	store remote.Store

	mu     sync.Mutex
	closed bool
	raws   map[string]*rawRef
	spools map[string]*spoolUse
	zips   map[string]*decomp.ZipArchive // see stream
	tick   uint64
}

// maxIdleSpools bounds the spools an itemSource keeps acquired while no
// one reads them.
const maxIdleSpools = 8

type rawRef struct {
	ready chan struct{} // closed when r, err are set
	r     remote.ReaderAtCloser
	err   error
}

type spoolUse struct {
	key      string
	ready    chan struct{} // closed when sp, err are set
	sp       *decomp.Spool
	err      error
	uses     int    // readers lent and not given back
	last     uint64 // the tick of the last lending
	listed   bool   // in itemSource.spools
	released bool
}

func newItemSource(f *FS, store remote.Store) *itemSource {
	return &itemSource{fs: f, store: store, raws: map[string]*rawRef{}, spools: map[string]*spoolUse{}}
}

var errSourceClosed = errors.New("the file is closed")

// raw is the shared open reader of an object; the itemSource closes it.
func (s *itemSource) raw(ctx context.Context, obj *remote.ObjectInfo) (remote.ReaderAtCloser, error) {
	k := obj.URL + "\x00" + obj.Identity() + "\x00" + fmt.Sprint(obj.Size)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errSourceClosed
	}
	e := s.raws[k]
	if e == nil {
		e = &rawRef{ready: make(chan struct{})}
		s.raws[k] = e
		s.mu.Unlock()
		e.r, e.err = s.fs.Opener.Open(ctx, s.store, *obj)
		if e.err != nil {
			s.mu.Lock()
			if s.raws[k] == e {
				delete(s.raws, k) // the next read tries again
			}
			s.mu.Unlock()
		}
		close(e.ready)
		return e.r, e.err
	}
	s.mu.Unlock()
	select {
	case <-e.ready:
		return e.r, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// reader lends a reader of an item; its Close gives it back.
func (s *itemSource) reader(ctx context.Context, it *Item) (*itemReader, error) {
	if it.Key == "" {
		r, err := s.raw(ctx, it.Obj)
		if err != nil {
			return nil, err
		}
		return &itemReader{it: it, raw: r, fs: s.fs, release: func() {}}, nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errSourceClosed
	}
	e := s.spools[it.Key]
	opener := e == nil
	if opener {
		e = &spoolUse{key: it.Key, ready: make(chan struct{}), listed: true}
		s.spools[it.Key] = e
	}
	e.uses++
	s.tick++
	e.last = s.tick
	s.mu.Unlock()
	if opener {
		e.sp, e.err = s.fs.spools.acquire(it, s.fs.streamOpener(s.store, it), it.expectedSize(), s.fs.spoolFloor())
		if e.err != nil {
			s.mu.Lock()
			if s.spools[it.Key] == e {
				delete(s.spools, it.Key)
				e.listed = false
			}
			s.mu.Unlock()
		}
		close(e.ready)
	} else {
		select {
		case <-e.ready:
		case <-ctx.Done():
			s.giveBack(e)
			return nil, ctx.Err()
		}
	}
	if e.err != nil {
		s.giveBack(e)
		return nil, e.err
	}
	return &itemReader{it: it, spool: e.sp, fs: s.fs, release: func() { s.giveBack(e) }}, nil
}

// giveBack ends one use of a spool; spools beyond maxIdleSpools that no
// one reads are released, least recently lent first.
func (s *itemSource) giveBack(e *spoolUse) {
	s.mu.Lock()
	e.uses--
	var out []*spoolUse
	if !e.listed && e.uses == 0 && e.sp != nil && !e.released {
		e.released = true
		out = append(out, e)
	}
	if len(s.spools) > maxIdleSpools {
		var idle []*spoolUse
		for _, x := range s.spools {
			if x.uses == 0 {
				idle = append(idle, x)
			}
		}
		sort.Slice(idle, func(i, j int) bool { return idle[i].last < idle[j].last })
		for _, x := range idle {
			if len(s.spools) <= maxIdleSpools {
				break
			}
			delete(s.spools, x.key)
			x.listed = false
			if x.sp != nil && !x.released {
				x.released = true
				out = append(out, x)
			}
		}
	}
	s.mu.Unlock()
	for _, x := range out {
		s.fs.spools.release(x.sp, x.key)
	}
}

// stream starts an item's decompressed stream from its beginning, for
// reading its first line while a plan is made: members of one zip share
// the object and one reading of its directory. (A stream that outlives
// the call, a spool's, opens its own: see streamOpener.)
func (s *itemSource) stream(ctx context.Context, it *Item) (io.ReadCloser, error) {
	if it.Member == nil || it.Format.Archive != decomp.Zip {
		return s.fs.streamOpener(s.store, it)(ctx)
	}
	r, err := s.raw(ctx, it.Obj)
	if err != nil {
		return nil, err
	}
	k := it.Obj.URL + "\x00" + it.Obj.Identity()
	s.mu.Lock()
	z := s.zips[k]
	s.mu.Unlock()
	if z == nil {
		if z, err = decomp.OpenZip(ctxReaderAt{ctx, r}, it.Obj.Size); err != nil {
			return nil, fmt.Errorf("%s: %w", it.Obj.URL, err)
		}
		s.mu.Lock()
		if s.zips == nil {
			s.zips = map[string]*decomp.ZipArchive{}
		}
		s.zips[k] = z
		s.mu.Unlock()
	}
	return z.Open(*it.Member)
}

// close releases the spools and closes the objects; readers still lent
// give their spools back when they are done.
func (s *itemSource) close() error {
	s.mu.Lock()
	s.closed = true
	raws := s.raws
	s.raws = map[string]*rawRef{}
	var out []*spoolUse
	for k, e := range s.spools {
		delete(s.spools, k)
		e.listed = false
		if e.uses == 0 && e.sp != nil && !e.released {
			e.released = true
			out = append(out, e)
		}
	}
	s.zips = nil
	s.mu.Unlock()
	for _, e := range out {
		s.fs.spools.release(e.sp, e.key)
	}
	var first error
	for _, e := range raws {
		<-e.ready
		if e.err == nil {
			if err := e.r.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}
