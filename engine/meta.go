package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/intakefs/intakefs/remote"
)

// metaDir is a catalog's .catalog directory.
type metaDir struct {
	fs *FS
	// dir is the catalog described, when there is one to look up again:
	// go-fuse keeps the first node it is given for an inode number, and
	// .catalog keeps its number across loads of its catalog, so a node
	// that served only the view it was made with would describe the
	// catalog as it was at the first lookup, for ever.
	dir *catalogDir
	// view and listing are what this node was made with.
	view    *View
	listing *listing
}

// now is d for the catalog as it is now.
func (d *metaDir) now(ctx context.Context) *metaDir {
	if d.dir == nil {
		return d
	}
	v, l, err := d.dir.listing(ctx)
	if err != nil || l == nil {
		return d
	}
	return &metaDir{fs: d.fs, view: v, listing: l}
}

var _ Dir = (*metaDir)(nil)

func (d *metaDir) Name() string { return ".catalog" }
func (d *metaDir) IsDir() bool  { return true }
func (d *metaDir) Ino() uint64  { return inoOf("meta:" + d.view.Ident) }

func (d *metaDir) ReadDir(ctx context.Context) ([]Node, error) {
	d = d.now(ctx)
	id := fmt.Sprintf("%s\x00gen%d", d.view.Ident, d.view.Cat.Gen)
	out := []Node{
		&bytesFile{name: "describe.yaml", ident: "catdesc:" + id, mtime: d.fs.Started, gen: d.describe},
		&bytesFile{name: "metadata.json", ident: "catmeta:" + id, mtime: d.fs.Started, gen: func() ([]byte, error) { return toJSON(d.view.Cat.Metadata) }},
		&bytesFile{name: "errors.txt", ident: "caterr:" + id, mtime: d.fs.Started, gen: d.errors},
	}
	if d.view.Parent == nil && d.fs.stats != nil {
		// counters of the cache and the remote requests, for benchmarks
		out = append(out, &bytesFile{name: "stats.json", ident: "stats", mtime: d.fs.Started, live: true,
			gen: d.fs.statsJSON})
	}
	return out, nil
}

// jsonRound turns a struct into plain JSON values.
func jsonRound(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func (d *metaDir) Lookup(ctx context.Context, name string) (Node, error) {
	return lookupIn(ctx, d, name)
}

func (d *metaDir) describe() ([]byte, error) {
	c := d.view.Cat
	doc := map[string]any{
		"name":        c.Name,
		"description": c.Description,
		"metadata":    redact(c.Metadata),
		// the sources are the files beside .catalog/; with an empty
		// "sources" Intake opens this as a catalog (it refuses one
		// without the key), giving the name, description and metadata
		"sources": map[string]any{},
	}
	if len(d.view.Params) > 0 {
		doc["parameters"] = describeParams(d.view.Params, nil)
	}
	return toYAML(doc)
}

// Errors lists what could not be loaded, one problem a line.
func (d *metaDir) errors() ([]byte, error) {
	var b bytes.Buffer
	if d.view.Err != nil {
		fmt.Fprintln(&b, oneLine(d.view.Err.Error()))
	}
	for _, e := range d.view.Cat.Errors {
		fmt.Fprintln(&b, oneLine(e.Error()))
	}
	for _, p := range d.listing.problems {
		fmt.Fprintln(&b, oneLine(p))
	}
	return b.Bytes(), nil
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// sourceDir holds a source's describe.yaml and metadata.json.
type sourceDir struct {
	fs   *FS
	name string
	r    *Rendered
	// for a source whose defaults do not render:
	view  *View
	entry *Entry
	err   error
	// ino is Ino's answer once made: a directory listing asks for it
	// once per entry per request, and the identity takes formatting
	ino atomic.Uint64
	// kids are the two files, made once: a walk lists and looks up in
	// each source directory several times
	kidsOnce sync.Once
	kids     []Node
}

var _ Dir = (*sourceDir)(nil)

func (d *sourceDir) Name() string { return d.name }
func (d *sourceDir) IsDir() bool  { return true }
func (d *sourceDir) ident() string {
	if d.r != nil {
		return fmt.Sprintf("%s\x00gen%d", d.r.Key(), d.r.Entry.Gen)
	}
	return fmt.Sprintf("%s/%s\x00invalid\x00gen%d", d.view.Ident, d.entry.Name, d.entry.Gen)
}
func (d *sourceDir) Ino() uint64 {
	if n := d.ino.Load(); n != 0 {
		return n
	}
	n := inoOf("src:" + d.ident())
	d.ino.Store(n)
	return n
}

func (d *sourceDir) ReadDir(ctx context.Context) ([]Node, error) {
	d.kidsOnce.Do(func() {
		id := d.ident()
		fail := func() ([]byte, error) { return nil, d.err }
		desc, md := fail, fail
		if d.r != nil {
			desc = func() ([]byte, error) { b, _, err := d.r.files(); return b, err }
			md = func() ([]byte, error) { _, b, err := d.r.files(); return b, err }
		}
		d.kids = []Node{
			&bytesFile{name: "describe.yaml", ident: "desc:" + id, mtime: d.fs.Started, gen: desc},
			&bytesFile{name: "metadata.json", ident: "md:" + id, mtime: d.fs.Started, gen: md},
		}
	})
	return d.kids, nil
}

func (d *sourceDir) Lookup(ctx context.Context, name string) (Node, error) {
	return lookupIn(ctx, d, name)
}

// Rendered gives the rendered source behind a source directory (nil and
// the reason when its parameters are invalid); the CLI's describe uses it.
func (d *sourceDir) Rendered() (*Rendered, error) { return d.r, d.err }

// DescribeSource is the source as a one-entry Intake catalog: rendered
// args and metadata, the declared parameters with the values used as
// their defaults, secrets redacted.
func DescribeSource(r *Rendered) ([]byte, error) {
	e := r.Entry
	md := copyMap(r.Metadata)
	delete(md, "catalog_dir")
	delete(md, "cache") // Intake adds both again from the entry
	src := map[string]any{
		"description":   e.Description,
		"driver":        e.DriverRaw,
		"direct_access": e.DirectAccess,
		"args":          rawTemplates(redact(r.Args)),
		"metadata":      rawTemplates(redact(md)),
	}
	if len(r.Params) > 0 {
		src["parameters"] = describeParams(r.Params, r.Values)
	}
	if len(e.Cache) > 0 {
		src["cache"] = e.Cache
	}
	used := map[string]any{}
	for k, v := range r.Values {
		used[k] = yamlSafe(v)
	}
	doc := map[string]any{
		"metadata": map[string]any{
			"version": 1,
			"intakefs": map[string]any{
				"source":          e.Name,
				"defined_in":      fmt.Sprintf("%s:%d", e.File, e.Line),
				"parameters_used": used,
			},
		},
		"sources": map[string]any{e.Name: src},
	}
	return toYAML(doc)
}

// rawTemplates protects rendered strings that still hold template syntax
// (a value from a path is never expanded) from Intake rendering them a
// second time when it reads describe.yaml.
func rawTemplates(v any) any {
	return mapLeaves(v, func(leaf any) any {
		x, ok := leaf.(string)
		if !ok || (!strings.Contains(x, "{{") && !strings.Contains(x, "{%") && !strings.Contains(x, "{#")) {
			return leaf
		}
		const end = "{% endraw %}"
		return "{% raw %}" + strings.ReplaceAll(x, end, end+"{{ '"+end+"' }}{% raw %}") + end
	})
}

// mapLeaves copies a tree of maps, lists and tuples (as lists), applying
// leaf to everything else.
func mapLeaves(v any, leaf func(any) any) any {
	switch x := v.(type) {
	case tuple:
		return mapLeaves([]any(x), leaf)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = mapLeaves(e, leaf)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = mapLeaves(e, leaf)
		}
		return out
	}
	return leaf(v)
}

func describeParams(ps []*Param, values map[string]any) map[string]any {
	out := map[string]any{}
	for _, p := range ps {
		d := map[string]any{"description": p.Description, "type": p.Type}
		if p.Type == "" {
			d["type"] = "other"
		}
		if v, ok := values[p.Name]; ok {
			d["default"] = yamlSafe(v)
		} else if p.Default != nil {
			d["default"] = yamlSafe(p.Default)
		}
		if p.Min != nil {
			d["min"] = yamlSafe(p.Min)
		}
		if p.Max != nil {
			d["max"] = yamlSafe(p.Max)
		}
		if p.Allowed != nil {
			d["allowed"] = yamlSafe(p.Allowed)
		}
		out[p.Name] = d
	}
	return out
}

// yamlSafe turns typed values into what yaml and json encode plainly.
func yamlSafe(v any) any { return mapLeaves(v, func(leaf any) any { return leaf }) }

// redact hides secrets in args and metadata, with the rules the remote
// package applies to storage_options and URLs everywhere: values of keys
// that name a secret, credentials and signatures inside URLs.
func redact(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return remote.RedactOptions(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = redact(e)
		}
		return out
	case string:
		return remote.RedactURL(x)
	}
	return v
}

func toYAML(v any) ([]byte, error) {
	return encodeYAML(yamlSafe(v)), nil
}

func toJSON(v any) ([]byte, error) {
	// &, < and > as they are, as Python's json writes them: this is a
	// file for people and tools, not HTML
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(jsonSafe(v)); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// jsonSafe maps what JSON cannot hold: NaN and infinities become null,
// times ISO 8601 strings.
func jsonSafe(v any) any {
	return mapLeaves(v, func(leaf any) any {
		switch x := leaf.(type) {
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil
			}
		case time.Time:
			return x.Format(time.RFC3339Nano)
		}
		return leaf
	})
}

// bytesFile is a small generated file.
type bytesFile struct {
	name  string
	ident string
	mtime time.Time
	gen   func() ([]byte, error)
	// live content changes from one read to the next: each open takes a
	// snapshot and the kernel passes reads through (direct I/O)
	live bool
}

func (b *bytesFile) DirectIO() bool { return b.live }

var _ File = (*bytesFile)(nil)

func (b *bytesFile) Name() string { return b.name }
func (b *bytesFile) IsDir() bool  { return false }
func (b *bytesFile) Ino() uint64  { return inoOf(b.ident) }
func (b *bytesFile) Stat(ctx context.Context) (FileStat, error) {
	data, err := b.gen()
	if err != nil {
		return FileStat{ModTime: b.mtime}, nil
	}
	return FileStat{Size: int64(len(data)), ModTime: b.mtime}, nil
}
func (b *bytesFile) Open(ctx context.Context) (Handle, error) {
	data, err := b.gen()
	if err != nil {
		return nil, err
	}
	return bytesHandle(data), nil
}

type bytesHandle []byte

func (h bytesHandle) ReadAt(ctx context.Context, p []byte, off int64) (int, error) {
	if off >= int64(len(h)) {
		return 0, io.EOF
	}
	n := copy(p, h[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (h bytesHandle) Close() error { return nil }

// sortedKeys is for deterministic output where maps are walked.
func sortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// statsJSON is the cache's counters, with what the decompressed spools
// hold (they share the cache's size limit but are not blocks).
func (f *FS) statsJSON() ([]byte, error) {
	v := jsonRound(f.stats())
	if m, ok := v.(map[string]any); ok && f.spools != nil {
		m["SpoolBytes"] = f.spools.Total()
	}
	return toJSON(v)
}
