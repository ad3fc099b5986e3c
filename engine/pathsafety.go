package engine

import (
	"fmt"
	"path"
	"strings"
)

// Path safety (issue 3, item 7). A value given in a path (src@k=v,
// sub@k=v, or --param) must not lead a local path outside the directory
// its template names: for `{{ CATALOG_DIR }}/data/{{ name }}.csv` that is
// CATALOG_DIR/data/, for `{{ path }}` (the whole path from the value) the
// directory the path resolves against, so the value may be neither
// absolute nor climb out with "..". A value that is in the parameter's
// allowed list is trusted: the catalog's author listed it. Remote URLs
// (s3://, https://, ...) are not local paths and are not checked.
//
// The directory a template names is found by rendering it once more with
// the value replaced by a marker: what precedes the marker, up to its last
// "/", is the directory. This rendering is done only for values that could
// escape (ones holding ".." or starting with "/"), so it costs nothing on
// the common path.

// pathMarker stands for the value in the second rendering; no filter a
// catalog would apply (upper, lower, replace of letters) changes it.
const pathMarker = "\x00\x01\x00"

// checkPathSafety refuses a rendered source whose data location (or a
// nested catalog's path) a user value leads outside its directory.
// args are the unrendered arguments, ctx the context they were rendered
// with, out the rendered ones, user the values from the path.
func (env *Env) checkPathSafety(e *Entry, args, ctx, out map[string]any, params []*Param, user map[string]any) error {
	type suspect struct {
		p   *Param
		val any
		s   string
	}
	var suspects []suspect
	for _, p := range params {
		val, fromUser := user[p.Name]
		if !fromUser {
			if !p.userSet {
				continue
			}
			val = ctx[p.Name]
		}
		s, ok := val.(string)
		if !ok || !(strings.Contains(s, "..") || strings.HasPrefix(s, "/")) {
			continue
		}
		if p.allows(val) {
			continue
		}
		suspects = append(suspects, suspect{p, val, s})
	}
	if len(suspects) == 0 {
		return nil
	}
	for _, key := range urlArgKeys {
		raw, has := args[key]
		if !has {
			continue
		}
		var templates, rendered []string
		switch x := raw.(type) {
		case string:
			if r, ok := out[key].(string); ok {
				templates, rendered = []string{x}, []string{r}
			}
		case []any:
			rl, _ := out[key].([]any)
			for i, t := range x {
				ts, ok1 := t.(string)
				if i >= len(rl) {
					break
				}
				rs, ok2 := rl[i].(string)
				if ok1 && ok2 {
					templates = append(templates, ts)
					rendered = append(rendered, rs)
				}
			}
		}
		for i, tpl := range templates {
			local, isLocal := localPath(rendered[i])
			if !isLocal {
				continue
			}
			for _, sp := range suspects {
				if err := env.checkOne(e, key, tpl, local, ctx, sp.p, sp.s); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (env *Env) checkOne(e *Entry, key, tpl, rendered string, ctx map[string]any, p *Param, val string) error {
	refuse := func(why string) error {
		return &ParamError{p.Name, fmt.Sprintf("%s=%s: %s (argument %s of %s; only a value in the parameter's allowed list may do that)", p.Name, val, why, key, e.Name)}
	}
	mctx := make(map[string]any, len(ctx))
	for k, v := range ctx {
		mctx[k] = v
	}
	mctx[p.Name] = pathMarker
	marked, err := env.RenderString(tpl, mctx)
	i := strings.Index(marked, pathMarker)
	if err != nil || i < 0 {
		// the value's place cannot be found: refuse it if it shows in the
		// path at all, since it may escape
		if strings.Contains(rendered, val) {
			return refuse("a value with \"..\" or an absolute path is refused here")
		}
		return nil
	}
	prefix, _ := localPath(marked[:i])
	dir := ""
	if j := strings.LastIndexByte(prefix, '/'); j >= 0 {
		dir = prefix[:j+1]
	}
	clean := path.Clean(rendered)
	if dir == "" {
		if path.IsAbs(clean) {
			return refuse("an absolute path is refused")
		}
		if clean == ".." || strings.HasPrefix(clean, "../") {
			return refuse("the value leads outside the directory the path resolves against")
		}
		return nil
	}
	base := path.Clean(dir)
	if clean == base || strings.HasPrefix(clean, strings.TrimSuffix(base, "/")+"/") {
		return nil
	}
	return refuse(fmt.Sprintf("the value leads outside the directory %s", dir))
}

// localPath is a rendered location as a local path, when it is one:
// fsspec cache prefixes and file:// are dropped, URLs are not local.
func localPath(s string) (string, bool) {
	s = stripChain(s)
	if strings.HasPrefix(s, "file://") {
		return strings.TrimPrefix(s, "file://"), true
	}
	if strings.Contains(s, "://") || strings.Contains(s, "::") {
		return s, false
	}
	return s, true
}
