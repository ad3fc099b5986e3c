package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/intakefs/intakefs/cache"
	"github.com/intakefs/intakefs/remote"
)

// Node is one name in the tree intakefs serves. The FUSE layer and the
// CLI's ls/describe/cat both walk this tree.
type Node interface {
	Name() string
	IsDir() bool
	// Ino is stable for the node's identity: the same source with the
	// same parameter values always has the same number.
	Ino() uint64
}

// Dir is a directory node.
type Dir interface {
	Node
	ReadDir(ctx context.Context) ([]Node, error)
	Lookup(ctx context.Context, name string) (Node, error)
}

// File is a file node.
type File interface {
	Node
	Stat(ctx context.Context) (FileStat, error)
	Open(ctx context.Context) (Handle, error)
}

// Versioned is a Dir that can say which version of its contents it
// lists now. The FUSE layer shows Version as the directory's mtime: the
// kernel keeps a directory's listing cached and drops it when the mtime it
// gets on an attribute refresh differs, so Version must change whenever
// the names listed can. A Dir that is not Versioned may change at any
// time, and the FUSE layer treats every refresh as a change.
type Versioned interface {
	Version(ctx context.Context) time.Time
	// KnownVersion is Version without loading or checking anything: the
	// version of what was last loaded, or the start of the FS when nothing
	// was. Listing a catalog gives attributes for every nested catalog in
	// it, which must not load each of them (a dead server behind one would
	// hold up the listing); the kernel asks for Version on its own when
	// its attributes expire.
	KnownVersion() time.Time
}

// KeepCacher is a File whose content never changes under the same inode
// number, so the kernel may keep its page cache across opens.
type KeepCacher interface{ KeepCache() bool }

// LocalFiler is a Handle that is exactly one local file, which the FUSE
// layer can hand to the kernel for passthrough reads.
type LocalFiler interface {
	LocalFile(ctx context.Context) *os.File
}

// Decompressor is a Handle that can say whether its reads decompress
// data for the first time (no complete spool holds it yet). Such reads
// are better served without the kernel's page cache of the mount: the
// spool already caches the bytes, and a second copy costs a copy per
// byte and as much memory again (later opens of the complete spool go
// to it directly, by passthrough).
type Decompressor interface {
	Decompressing() bool
}

// FileStat is what a file's attributes need.
type FileStat struct {
	Size    int64
	ModTime time.Time
}

// Handle is an open file.
type Handle interface {
	ReadAt(ctx context.Context, p []byte, off int64) (int, error)
	Close() error
}

// ErrNotFound is a name that does not exist.
var ErrNotFound = remote.ErrNotExist

// FS is the catalog tree for one root catalog.
type FS struct {
	RootPath    string
	RootParams  map[string]string
	RootOptions map[string]any
	Loader      *Loader
	Env         *Env
	Resolver    *Resolver
	Opener      cache.Opener
	Cwd         string
	Log         *slog.Logger
	// MaxVariants bounds the parameter variants listed per source.
	MaxVariants int
	// TTL is how long a listing or a data plan is reused; RemoteTTL how
	// long a plan of remote objects is (each re-plan is a request).
	TTL       time.Duration
	RemoteTTL time.Duration
	Started   time.Time

	// flight collapses concurrent builds of the same listing or plan.
	flight singleflight.Group

	mu sync.Mutex // guards listings, plans and views; never held during I/O
	// listings caches directory indexes by view identity.
	listings map[string]*listing
	// plans caches data plans by rendered key.
	plans map[string]*planEntry
	// views caches nested catalog views by identity.
	views map[string]*viewEntry
	// stats feeds .catalog/stats.json (nil: no such file).
	stats func() any
	// spools hold decompressed data (internally locked).
	spools *spools
	// prefetch builds nested catalogs' listings ahead of a tree walk
	// (internally locked; see prefetch.go for the lock order).
	prefetch prefetcher
	// zips keeps parsed zip directories for the opens of their members
	// (internally locked; see zipdirs.go).
	zips zipDirs
}

type viewEntry struct {
	view   *View
	parent *Catalog
	at     time.Time
}

type planEntry struct {
	plan *Plan
	err  error
	at   time.Time
	ttl  time.Duration
}

// Options configure New.
type Options struct {
	Cwd        string
	RootParams map[string]string
	AllowShell bool
	Log        *slog.Logger
	Opener     cache.Opener
	// Remote bounds and retries requests to remote stores.
	Remote remote.Config
	Retry  remote.RetryPolicy
	// RootOptions are storage_options for a remote root catalog; its
	// sources that use CATALOG_DIR inherit them, as in Intake.
	RootOptions map[string]any
	// Stats, when set, is shown as the root's .catalog/stats.json.
	Stats func() any
	// SpoolDir holds decompressed data; default: "spool" in the block
	// cache's directory when Opener is a *cache.Cache, else a directory
	// per user under the system's temporary one.
	SpoolDir string
	// SpoolLimit, when set, bounds the bytes of decompressed data kept
	// (default: what the block cache's size limit leaves; 1 GiB without
	// a block cache).
	SpoolLimit func() int64
	// RemoteRecheck is how often a remote catalog is checked again and
	// how long a plan of remote data is reused (0: DefaultRemoteRecheck).
	RemoteRecheck time.Duration
}

// New makes the tree for the catalog at root and loads it once, so that a
// catalog that cannot be read at all is an error now rather than an empty
// mount.
func New(root string, o Options) (*FS, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Opener == nil {
		o.Opener = cache.Direct{}
	}
	res := &Resolver{Cwd: o.Cwd, Config: o.Remote, Retry: o.Retry}
	env := DefaultEnv()
	env.AllowShell = o.AllowShell
	loader := NewLoader(o.Cwd)
	loader.Log = o.Log
	loader.Resolver = res
	if o.RemoteRecheck <= 0 {
		o.RemoteRecheck = DefaultRemoteRecheck
	}
	loader.RemoteRecheckInterval = o.RemoteRecheck
	f := &FS{RootPath: root, RootParams: o.RootParams, RootOptions: o.RootOptions, Loader: loader, Env: env, Resolver: res,
		Opener: o.Opener, Cwd: o.Cwd, Log: o.Log, MaxVariants: 64, TTL: time.Second, RemoteTTL: o.RemoteRecheck, Started: time.Now(),
		listings: map[string]*listing{}, plans: map[string]*planEntry{}, views: map[string]*viewEntry{}}
	f.stats = o.Stats
	if o.SpoolDir == "" {
		o.SpoolDir = defaultSpoolDir()
		if c, ok := o.Opener.(*cache.Cache); ok {
			o.SpoolDir = filepath.Join(c.Dir(), "spool")
		}
	}
	if o.SpoolLimit == nil {
		o.SpoolLimit = spoolLimit(o.Opener)
	}
	useExternalDecoders()
	sp, err := newSpools(o.SpoolDir, o.SpoolLimit, o.Log)
	if err != nil {
		return nil, err
	}
	if c, ok := o.Opener.(*cache.Cache); ok && o.SpoolDir == filepath.Join(c.Dir(), "spool") {
		// one --cache-max-size for blocks and spools: each leaves the
		// other room
		sp.tell = c.SetBeside
		sp.freeBlocks = func(n int64) { c.Release(n) }
		sp.mu.Lock()
		sp.noteLocked()
		sp.mu.Unlock()
	}
	f.spools = sp
	if !isRemote(f.RootPath) {
		f.Loader.startup = f.Loader.abs(f.RootPath)
	}
	v := f.rootView()
	f.Loader.startup = ""

	if v.Err != nil {
		return nil, v.Err
	}
	return f, nil
}

// Root is the top directory.
func (f *FS) Root() Dir { return &catalogDir{fs: f, name: "", ident: "root"} }

func (f *FS) rootView() *View {
	cat, err := f.Loader.Open(f.RootPath, f.RootOptions)
	if err != nil {
		return &View{Cat: emptyCatalog(f.RootPath), Ident: "root", Err: err}
	}
	params := cat.Params
	if len(f.RootParams) > 0 {
		vals := map[string]any{}
		for k, raw := range f.RootParams {
			p := findParam(params, k)
			if p == nil {
				return &View{Cat: cat, Ident: "root", Err: &ParamError{k, fmt.Sprintf("--param %s: the catalog has no parameter %q (it has: %s)", k, k, paramNames(params))}}
			}
			v, err := p.FromPath(raw)
			if err != nil {
				return &View{Cat: cat, Ident: "root", Err: fmt.Errorf("--param %s=%s: %w", k, raw, err)}
			}
			vals[k] = v
		}
		params = withUserDefaults(params, vals)
	}
	return &View{Cat: cat, Params: params, Ident: "root"}
}

// emptyCatalog stands for a catalog that could not be loaded. Each is a
// generation of its own, as a load is: its .catalog files (errors.txt says
// why) are new inodes at each attempt, never an old attempt's.
func emptyCatalog(path string) *Catalog {
	return &Catalog{Path: path, Metadata: map[string]any{}, byName: map[string]*Entry{}, Gen: loadGen.Add(1), Loaded: time.Now()}
}

func findParam(ps []*Param, name string) *Param {
	for _, p := range ps {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// childView loads the nested catalog an entry points at, for the values
// set in its path segment.
func (f *FS) childView(ctx context.Context, parent *View, e *Entry, kvs []KV) (*View, error) {
	ident := parent.Ident + "/" + e.Name + canonKVs(kvs)
	f.mu.Lock()
	ve := f.views[ident]
	f.mu.Unlock()
	if ve != nil && ve.parent == parent.Cat && time.Since(ve.at) < f.TTL {
		return ve.view, nil
	}
	v, err := f.makeChildView(ctx, parent, e, kvs, ident)
	if err == nil {
		f.mu.Lock()
		if len(f.views) > 10000 {
			f.views = map[string]*viewEntry{}
		}
		f.views[ident] = &viewEntry{view: v, parent: parent.Cat, at: time.Now()}
		f.mu.Unlock()
	}
	return v, err
}

func (f *FS) makeChildView(ctx context.Context, parent *View, e *Entry, kvs []KV, ident string) (*View, error) {
	own := f.entryParams(parent, e)
	entryVals := map[string]any{}
	catVals := map[string]string{}
	seen := map[string]bool{}
	for _, kv := range kvs {
		if seen[kv.Key] {
			return nil, &ParamError{kv.Key, fmt.Sprintf("parameter %s given twice", kv.Key)}
		}
		seen[kv.Key] = true
		if p := findParam(own, kv.Key); p != nil && findParam(parent.Params, kv.Key) == nil {
			v, err := p.FromPath(kv.Value)
			if err != nil {
				return nil, err
			}
			entryVals[kv.Key] = v
		} else {
			catVals[kv.Key] = kv.Value
		}
	}
	// A view that failed is nested too (Parent): .catalog shows no
	// stats.json in it, as in any nested catalog.
	r, err := f.Env.Render(parent, e, entryVals)
	if err != nil {
		return &View{Cat: emptyCatalog(e.Name), Ident: ident, Err: err, Parent: parent}, nil
	}
	cat, err := f.loadNested(r)
	if err != nil {
		return &View{Cat: emptyCatalog(e.Name), Ident: ident, Err: err, Parent: parent}, nil
	}
	// the child's catalog parameters, updated by the parent's (which win)
	params := append([]*Param(nil), cat.Params...)
	for _, pp := range parent.Params {
		replaced := false
		for i, cp := range params {
			if cp.Name == pp.Name {
				params[i] = pp
				replaced = true
			}
		}
		if !replaced {
			params = append(params, pp)
		}
	}
	if len(catVals) > 0 {
		vals := map[string]any{}
		for k, raw := range catVals {
			p := findParam(params, k)
			if p == nil {
				return nil, &ParamError{k, fmt.Sprintf("unknown parameter %q for catalog %s (it has: %s)", k, e.Name, paramNames(append(params, own...)))}
			}
			v, err := p.FromPath(raw)
			if err != nil {
				return nil, err
			}
			vals[k] = v
		}
		params = withUserDefaults(params, vals)
	}
	child := &View{Cat: cat, Params: params, Ident: ident, Parent: parent}
	if err := checkCycle(child, e); err != nil {
		return &View{Cat: emptyCatalog(e.Name), Ident: ident, Err: err, Parent: parent}, nil
	}
	return child, nil
}

// checkCycle refuses a nested catalog that is one of its own ancestors
// (same files, same parameter values), which would be an endless tree.
func checkCycle(v *View, e *Entry) error {
	depth := 0
	for a := v.Parent; a != nil; a = a.Parent {
		depth++
		if depth >= maxDepth {
			return fmt.Errorf("%s:%d: nested catalog %q: more than %d levels deep; refusing (a cycle?)", e.File, e.Line, e.Name, maxDepth)
		}
		if sameFiles(a.Cat, v.Cat) && sameParamValues(a.Params, v.Params) {
			return fmt.Errorf("%s:%d: nested catalog %q is %s again, which contains it: a cycle; not shown", e.File, e.Line, e.Name, strings.Join(v.Cat.Files, ", "))
		}
	}
	return nil
}

func sameFiles(a, b *Catalog) bool {
	if len(a.Files) == 0 || len(a.Files) != len(b.Files) {
		return false
	}
	for i := range a.Files {
		if a.Files[i] != b.Files[i] {
			return false
		}
	}
	return true
}

func sameParamValues(a, b []*Param) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || pyRepr(a[i].Default) != pyRepr(b[i].Default) {
			return false
		}
	}
	return true
}

// entryParams are the parameters a nested-catalog entry itself takes.
func (f *FS) entryParams(v *View, e *Entry) []*Param { return v.paramsFor(e) }

func (f *FS) loadNested(r *Rendered) (*Catalog, error) {
	var p any = r.Args["path"]
	if p == nil {
		p = r.Args["urlpath"]
	}
	opts, _ := r.Args["storage_options"].(map[string]any)
	switch x := p.(type) {
	case string:
		if x == "" {
			break
		}
		return f.Loader.Open(x, opts)
	case []any:
		var paths []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				paths = append(paths, s)
			}
		}
		return f.Loader.OpenList(paths, opts)
	}
	return nil, fmt.Errorf("%s:%d: nested catalog %q has no path argument", r.Entry.File, r.Entry.Line, r.Entry.Name)
}

func canonKVs(kvs []KV) string {
	if len(kvs) == 0 {
		return ""
	}
	s := append([]KV(nil), kvs...)
	sort.Slice(s, func(i, j int) bool { return s[i].Key < s[j].Key })
	var b strings.Builder
	for _, kv := range s {
		b.WriteString("\x00" + kv.Key + "=" + kv.Value)
	}
	return b.String()
}

func inoOf(ident string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(ident))
	n := h.Sum64()
	if n <= 1 {
		n += 2 // 1 is the root's
	}
	return n
}

// plan returns the data plan for a rendered source, reusing one made in
// the last TTL.
func (f *FS) plan(ctx context.Context, r *Rendered) (*Plan, error) {
	key := r.Key()
	f.mu.Lock()
	pe := f.plans[key]
	f.mu.Unlock()
	if pe != nil && time.Since(pe.at) < pe.ttl {
		return pe.plan, pe.err
	}
	for {
		pe := f.planOnce(ctx, r, key)
		if errors.Is(pe.err, errNotAhead) && !isPrefetch(ctx) {
			continue // joined a plan made ahead of use, which gave up
		}
		return pe.plan, pe.err
	}
}

// planOnce makes the plan for r (or joins the one being made) and keeps
// it, unless it is a plan made ahead of use that gave up.
func (f *FS) planOnce(ctx context.Context, r *Rendered, key string) *planEntry {
	res, _, _ := f.flight.Do("plan\x00"+key, func() (any, error) {
		p, err := f.planFor(ctx, r)
		pe := &planEntry{plan: p, err: err, at: time.Now(), ttl: f.TTL}
		if errors.Is(err, errNotAhead) {
			return pe, nil
		}
		if urls, _, ok := urlArg(r); ok && len(urls) > 0 && isRemote(urls[0]) {
			// a remote plan costs requests; reuse it (and a failure)
			// for longer
			pe.ttl = f.RemoteTTL
		}
		f.mu.Lock()
		if len(f.plans) > 10000 {
			for k, old := range f.plans {
				if time.Since(old.at) >= old.ttl {
					delete(f.plans, k)
				}
			}
			if len(f.plans) > 10000 {
				f.plans = map[string]*planEntry{}
			}
		}
		f.plans[key] = pe
		f.mu.Unlock()
		return pe, nil
	})
	return res.(*planEntry)
}

// Walk resolves a slash-separated path below the root.
func (f *FS) Walk(ctx context.Context, p string) (Node, error) {
	var n Node = f.Root()
	for _, seg := range strings.Split(strings.Trim(p, "/"), "/") {
		if seg == "" || seg == "." {
			continue
		}
		d, ok := n.(Dir)
		if !ok {
			return nil, fmt.Errorf("%s: %w (not a directory)", p, ErrNotFound)
		}
		var err error
		n, err = d.Lookup(ctx, seg)
		if err != nil {
			return nil, err
		}
	}
	return n, nil
}

// ReadAll reads a whole file node.
func ReadAll(ctx context.Context, fl File, w io.Writer) (int64, error) {
	h, err := fl.Open(ctx)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	buf := make([]byte, 1<<20)
	var off int64
	for {
		n, err := h.ReadAt(ctx, buf, off)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return off, werr
			}
			off += int64(n)
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return off, nil
		}
		if err != nil {
			return off, err
		}
	}
}

// Describe gives the describe.yaml of the source or catalog at path p:
// what `intakefs describe` prints.
func (f *FS) Describe(ctx context.Context, p string) ([]byte, error) {
	n, err := f.Walk(ctx, p)
	if err != nil {
		return nil, err
	}
	switch x := n.(type) {
	case *dataFile:
		if x.err != nil {
			return nil, x.err
		}
		return DescribeSource(x.r)
	case *sourceDir:
		if x.err != nil {
			return nil, x.err
		}
		return DescribeSource(x.r)
	case *catalogDir:
		v, l, err := x.listing(ctx)
		if err != nil {
			return nil, err
		}
		if v.Err != nil {
			return nil, v.Err
		}
		return (&metaDir{fs: f, view: v, listing: l}).describe()
	case *partsDir, *treeDir:
		return nil, fmt.Errorf("%s is the data of a multi-part source: describe the source's directory instead", p)
	}
	return nil, fmt.Errorf("%s is not a source or a catalog", p)
}

// DirectIOer is a File whose size is not known or not stable: the kernel
// must pass every read through (FOPEN_DIRECT_IO) and readers read to EOF.
type DirectIOer interface{ DirectIO() bool }

// ObjectRef is one object behind a path of the tree.
type ObjectRef struct {
	Store remote.Store
	Info  remote.ObjectInfo
}

// Objects lists the remote objects whose bytes a path shows: what
// `intakefs cache warm` fetches.
func (f *FS) Objects(ctx context.Context, p string) ([]ObjectRef, error) {
	n, err := f.Walk(ctx, p)
	if err != nil {
		return nil, err
	}
	return f.objectsOf(ctx, n)
}

func (f *FS) objectsOf(ctx context.Context, n Node) ([]ObjectRef, error) {
	refs := func(p *Plan) []ObjectRef {
		out := make([]ObjectRef, len(p.Parts))
		for i, o := range p.Parts {
			out[i] = ObjectRef{p.Store, o}
		}
		return out
	}
	switch x := n.(type) {
	case *dataFile:
		if x.err != nil {
			return nil, x.err
		}
		p, err := f.plan(ctx, x.r)
		if err != nil {
			return nil, err
		}
		return refs(p), nil
	case *partsDir:
		return refs(x.plan), nil
	case *objFile:
		return []ObjectRef{{x.store, x.obj}}, nil
	case *treeDir, *catalogDir:
		kids, err := x.(Dir).ReadDir(ctx)
		if err != nil {
			return nil, err
		}
		var out []ObjectRef
		for _, k := range kids {
			if _, meta := k.(*metaDir); meta {
				continue
			}
			if _, src := k.(*sourceDir); src {
				continue
			}
			r, err := f.objectsOf(ctx, k)
			if err != nil {
				continue // a broken entry does not stop the rest
			}
			out = append(out, r...)
		}
		return out, nil
	}
	return nil, nil
}

// forget drops the cached plan of a source and the listing it is in: an
// open found its data changed, and the kernel's retry of the lookup
// (after ESTALE) must find the new version.
func (f *FS) forget(r *Rendered) {
	f.mu.Lock()
	delete(f.plans, r.Key())
	delete(f.listings, r.View.Ident)
	f.mu.Unlock()
}
