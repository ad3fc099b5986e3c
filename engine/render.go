package engine

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// View is a catalog with its catalog-level parameters bound: the root
// catalog with --param values, or a nested catalog reached through a path
// segment such as sub@bucket=prod.
type View struct {
	Cat *Catalog
	// Params are the effective catalog-level parameters: the catalog's
	// own, updated by those inherited from the parent (the parent's win, as
	// in Intake's Catalog.__getitem__), with user-set defaults applied.
	Params []*Param
	// Ident is a stable identity for inode numbers and cache keys.
	Ident string
	// Err is why this catalog could not be loaded (then Cat is empty).
	Err error
	// Parent is the catalog this one is nested in (nil for the root).
	Parent *View
}

// maxDepth bounds catalog nesting: deeper is almost surely a cycle the
// file check below cannot see (a template that makes each level new).
const maxDepth = 64

// paramsFor is what Intake's _get_entry gives a source: the catalog's
// parameters not redefined by the source, then the source's own.
func (v *View) paramsFor(e *Entry) []*Param {
	own := map[string]bool{}
	for _, p := range e.Params {
		own[p.Name] = true
	}
	var out []*Param
	for _, p := range v.Params {
		if !own[p.Name] {
			out = append(out, p)
		}
	}
	return append(out, e.Params...)
}

// Rendered is an entry with its arguments rendered for given values.
type Rendered struct {
	Entry  *Entry
	View   *View
	Params []*Param
	// Args are the rendered arguments, without "metadata".
	Args map[string]any
	// Metadata is the rendered metadata plus catalog_dir.
	Metadata map[string]any
	// Values are the parameter values used, by name.
	Values map[string]any

	// The generated files are made once: listings stat them often.
	once     sync.Once
	describe []byte
	mdJSON   []byte
	genErr   error
	key      string
}

// files returns describe.yaml and metadata.json for the source.
func (r *Rendered) files() ([]byte, []byte, error) {
	r.once.Do(func() {
		r.describe, r.genErr = DescribeSource(r)
		if r.genErr == nil {
			r.mdJSON, r.genErr = toJSON(redact(r.Metadata))
		}
	})
	return r.describe, r.mdJSON, r.genErr
}

// Key is the canonical identity of (entry, values): the same source with
// the same values in any order gives the same key.
func (r *Rendered) Key() string { return r.key }

func (r *Rendered) makeKey() string {
	names := make([]string, 0, len(r.Values))
	for k := range r.Values {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(r.View.Ident)
	b.WriteString("/")
	b.WriteString(r.Entry.Name)
	for _, k := range names {
		b.WriteString("\x00")
		b.WriteString(k)
		b.WriteString("=")
		b.WriteString(pyRepr(r.Values[k]))
	}
	return b.String()
}

// Render merges parameters into an entry's arguments the way Intake's
// merge_pars does. user holds values already converted by Param.FromPath;
// they are never expanded.
func (env *Env) Render(v *View, e *Entry, user map[string]any) (*Rendered, error) {
	if e.Err != nil {
		return nil, e.Err
	}
	params := v.paramsFor(e)
	known := map[string]*Param{}
	for _, p := range params {
		known[p.Name] = p
	}
	for k := range user {
		if known[k] == nil {
			return nil, &ParamError{k, fmt.Sprintf("unknown parameter %q for %s (it has: %s)", k, e.Name, paramNames(params))}
		}
	}
	md := copyMap(e.Metadata)
	md["catalog_dir"] = dirWithSlash(e.CatalogDir)
	if len(e.Cache) > 0 {
		// Intake puts the entry's cache block in the metadata
		md["cache"] = e.Cache
	}
	args := map[string]any{"metadata": md}
	for k, a := range e.Args {
		args[k] = a
	}
	inheritOptions(e, args)
	ctx := make(map[string]any, len(args)+len(params)+1)
	for k, a := range args {
		ctx[k] = a
	}
	ctx["CATALOG_DIR"] = dirWithSlash(e.CatalogDir)
	values := map[string]any{}
	for _, p := range params {
		val, fromUser := user[p.Name]
		if !fromUser {
			var err error
			val, err = env.defaultValue(p)
			if err != nil {
				return nil, err
			}
			if val == nil {
				continue
			}
		}
		good, err := p.Validate(val)
		if err != nil {
			return nil, err
		}
		ctx[p.Name] = good
		values[p.Name] = good
	}
	out := make(map[string]any, len(args))
	for k, a := range args {
		r, err := env.renderValue(a, ctx)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: source %q: argument %s: %w", e.File, e.Line, e.Name, k, err)
		}
		out[k] = r
	}
	for _, p := range params {
		if a, ok := out[p.Name]; ok {
			c, err := p.Validate(a)
			if err != nil {
				return nil, err
			}
			out[p.Name] = c
		}
	}
	if d, ok := e.DriverRaw.(map[string]any); ok {
		// Intake adds the chosen (first) named driver's own args after
		// rendering: they are used as written.
		if first := firstDriverName(e); first != "" {
			if spec, ok := d[first].(map[string]any); ok {
				if extra, ok := spec["args"].(map[string]any); ok {
					for k, a := range extra {
						out[k] = a
					}
				}
			}
		}
	}
	if err := env.checkPathSafety(e, args, ctx, out, params, user); err != nil {
		return nil, err
	}
	rmd, _ := out["metadata"].(map[string]any)
	delete(out, "metadata")
	if rmd == nil {
		rmd = md
	}
	r := &Rendered{Entry: e, View: v, Params: params, Args: out, Metadata: rmd, Values: values}
	r.key = r.makeKey()
	return r, nil
}

// defaultValue is the value a parameter takes when the user gave none:
// its default coerced to its type (nil when that fails, as in Intake),
// with env()/shell() expanded unless the default was set by a user.
func (env *Env) defaultValue(p *Param) (any, error) {
	if p.userSet {
		return p.Default, nil
	}
	d, err := p.Coerce(p.Default)
	if err != nil {
		return nil, nil
	}
	if s, ok := d.(string); ok {
		x, err := env.ExpandDefault(s)
		if err != nil {
			return nil, &ParamError{p.Name, fmt.Sprintf("default of parameter %s: %v", p.Name, err)}
		}
		return x, nil
	}
	return d, nil
}

func (env *Env) renderValue(a any, ctx map[string]any) (any, error) {
	switch x := a.(type) {
	case string:
		return env.RenderString(x, ctx)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, v := range x {
			r, err := env.renderValue(v, ctx)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, v := range x {
			r, err := env.renderValue(v, ctx)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return a, nil
}

func firstDriverName(e *Entry) string {
	// the canonical name came from the first key in file order; find the
	// key whose class gives it
	d, _ := e.DriverRaw.(map[string]any)
	names := make([]string, 0, len(d))
	for k := range d {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if spec, ok := d[k].(map[string]any); ok && canonicalDriver(spec["class"], nil) == e.Driver {
			return k
		}
	}
	return ""
}

func paramNames(ps []*Param) string {
	if len(ps) == 0 {
		return "no parameters"
	}
	seen := map[string]bool{}
	var names []string
	for _, p := range ps {
		if !seen[p.Name] {
			seen[p.Name] = true
			names = append(names, p.Name)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// dirWithSlash is CATALOG_DIR as Intake's get_dir gives it: with a
// trailing slash, so "{{ CATALOG_DIR }}/x.csv" renders "/dir//x.csv" there
// and here alike.
func dirWithSlash(d string) string {
	if d == "" || strings.HasSuffix(d, "/") || strings.Contains(d, "://") {
		// a remote catalog's CATALOG_DIR has no trailing slash in Intake
		return d
	}
	return d + "/"
}

// inheritOptions is Intake's rule for storage_options: a source of a
// remote catalog that builds a path from CATALOG_DIR and names no
// storage_options of its own gets the catalog's.
func inheritOptions(e *Entry, args map[string]any) {
	if len(e.CatalogOptions) == 0 {
		return
	}
	if _, has := args["storage_options"]; has {
		return
	}
	for k, a := range args {
		if k != "metadata" && mentionsCatalogDir(a) {
			args["storage_options"] = e.CatalogOptions
			return
		}
	}
}

// mentionsCatalogDir: Intake looks for CATALOG_DIR in each argument as
// text, so inside lists and mappings too.
func mentionsCatalogDir(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.Contains(x, "CATALOG_DIR")
	case []any:
		for _, e := range x {
			if mentionsCatalogDir(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if mentionsCatalogDir(e) {
				return true
			}
		}
	}
	return false
}

// withUserDefaults returns copies of ps whose defaults are replaced by the
// given values (already validated), for a catalog bound to user values.
func withUserDefaults(ps []*Param, vals map[string]any) []*Param {
	out := make([]*Param, len(ps))
	for i, p := range ps {
		if v, ok := vals[p.Name]; ok {
			cp := *p
			cp.Default = v
			cp.userSet = true
			out[i] = &cp
		} else {
			out[i] = p
		}
	}
	return out
}
