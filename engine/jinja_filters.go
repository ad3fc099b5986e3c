package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

type jFilterFunc func(v any, pos []any, kw map[string]any) (any, error)

// jArg is argument i (or keyword name) of a filter, else def.
func jArg(pos []any, kw map[string]any, i int, name string, def any) any {
	if i < len(pos) {
		return pos[i]
	}
	if v, ok := kw[name]; ok {
		return v
	}
	return def
}

func jArgInt(pos []any, kw map[string]any, i int, name string, def int64) (int64, error) {
	v := jArg(pos, kw, i, name, def)
	n, f, k, ok := jNum(v)
	if !ok {
		return 0, jErr("TypeError", "'%s' object cannot be interpreted as an integer", jTypeName(v))
	}
	if k == 2 {
		return int64(f), nil
	}
	return n, nil
}

// jFilters are jinja2's built-in filters that catalogs use, with
// jinja2's semantics (default applies to undefined values only unless
// its second argument is true; sort and unique ignore case; ...).
var jFilters map[string]jFilterFunc

// jTests are jinja2's built-in tests ("x is defined").
var jTests map[string]func(v any, pos []any, kw map[string]any) (bool, error)

func init() {
	jFilters = map[string]jFilterFunc{
		"default":    fDefault,
		"d":          fDefault,
		"join":       fJoin,
		"lower":      strFilter(strings.ToLower),
		"upper":      strFilter(strings.ToUpper),
		"title":      strFilter(pyTitle),
		"capitalize": strFilter(pyCapitalize),
		"trim":       fTrim,
		"replace":    fReplace,
		"length":     fLength,
		"count":      fLength,
		"first":      fFirst,
		"last":       fLast,
		"list":       fList,
		"string":     func(v any, _ []any, _ map[string]any) (any, error) { return jStr(v), nil },
		"int":        fInt,
		"float":      fFloat,
		"abs":        fAbs,
		"round":      fRound,
		"sum":        fSum,
		"min":        func(v any, p []any, k map[string]any) (any, error) { return fMinMax(v, -1) },
		"max":        func(v any, p []any, k map[string]any) (any, error) { return fMinMax(v, 1) },
		"sort":       fSort,
		"reverse":    fReverse,
		"unique":     fUnique,
		"dictsort":   fDictsort,
		"items":      fItems,
		"map":        fMap,
		"select":     selectFilter(true),
		"reject":     selectFilter(false),
		"tojson":     fToJSON,
		"urlencode":  fURLEncode,
		"escape":     fEscape,
		"e":          fEscape,
		"format":     fFormat,
		"center":     fCenter,
		"wordcount":  fWordcount,
		"truncate":   fTruncate,
		"safe":       func(v any, _ []any, _ map[string]any) (any, error) { return v, nil },
		"attr": func(v any, p []any, kw map[string]any) (any, error) {
			// a Python attribute only: a dict's keys are not attributes
			name := jStr(jArg(p, kw, 0, "name", ""))
			if _, isMap := v.(map[string]any); isMap && !jHasMethod(v, name) {
				return &jUndefined{name: name, hint: fmt.Sprintf("'%s' has no attribute %s", jObjRepr(v), pyQuote(name))}, nil
			}
			return jGetAttr(v, name)
		},
		"selectattr": selectAttrFilter(true),
		"rejectattr": selectAttrFilter(false),
		"indent":     fIndent,
		"batch":      fBatch,
	}
	jTests = map[string]func(v any, pos []any, kw map[string]any) (bool, error){
		"defined":   func(v any, _ []any, _ map[string]any) (bool, error) { _, u := v.(*jUndefined); return !u, nil },
		"undefined": func(v any, _ []any, _ map[string]any) (bool, error) { _, u := v.(*jUndefined); return u, nil },
		"none":      func(v any, _ []any, _ map[string]any) (bool, error) { return v == nil, nil },
		"boolean":   func(v any, _ []any, _ map[string]any) (bool, error) { _, ok := v.(bool); return ok, nil },
		"true":      func(v any, _ []any, _ map[string]any) (bool, error) { return v == true, nil },
		"false":     func(v any, _ []any, _ map[string]any) (bool, error) { return v == false, nil },
		"integer": func(v any, _ []any, _ map[string]any) (bool, error) {
			_, ok := v.(int64)
			return ok, nil
		},
		"float": func(v any, _ []any, _ map[string]any) (bool, error) { _, ok := v.(float64); return ok, nil },
		"number": func(v any, _ []any, _ map[string]any) (bool, error) {
			_, _, _, ok := jNum(v)
			return ok, nil
		},
		"string":  func(v any, _ []any, _ map[string]any) (bool, error) { _, ok := v.(string); return ok, nil },
		"mapping": func(v any, _ []any, _ map[string]any) (bool, error) { _, ok := v.(map[string]any); return ok, nil },
		"sequence": func(v any, _ []any, _ map[string]any) (bool, error) {
			switch v.(type) {
			case []any, tuple, string, map[string]any:
				return true, nil
			}
			return false, nil
		},
		"iterable": func(v any, _ []any, _ map[string]any) (bool, error) {
			_, err := jIter(v) // an undefined value iterates as nothing
			return err == nil, nil
		},
		"callable": func(v any, _ []any, _ map[string]any) (bool, error) {
			switch v.(type) {
			case jFunc, *jMethod:
				return true, nil
			}
			return false, nil
		},
		"even":        parityTest(0),
		"odd":         parityTest(1),
		"divisibleby": divisibleTest,
		"lower":       caseTest(strings.ToLower),
		"upper":       caseTest(strings.ToUpper),
		"in": func(v any, p []any, kw map[string]any) (bool, error) {
			return jContains(jArg(p, kw, 0, "seq", nil), v)
		},
		"sameas": func(v any, p []any, kw map[string]any) (bool, error) {
			// Python's "is": None, True, False and the small integers
			// CPython caches are the same objects
			o := jArg(p, kw, 0, "other", nil)
			switch x := o.(type) {
			case nil, bool:
				return v == o, nil
			case int64:
				y, ok := v.(int64)
				return ok && x == y && x >= -5 && x <= 256, nil
			}
			return false, nil
		},
	}
	for _, c := range []struct {
		names []string
		op    string
	}{
		{[]string{"eq", "equalto", "=="}, "=="}, {[]string{"ne", "!="}, "!="},
		{[]string{"lt", "lessthan", "<"}, "<"}, {[]string{"le", "<="}, "<="},
		{[]string{"gt", "greaterthan", ">"}, ">"}, {[]string{"ge", ">="}, ">="},
	} {
		op := c.op
		for _, n := range c.names {
			jTests[n] = func(v any, p []any, kw map[string]any) (bool, error) {
				return jCompareOp(op, v, jArg(p, kw, 0, "other", nil))
			}
		}
	}
}

func parityTest(want int64) func(v any, _ []any, _ map[string]any) (bool, error) {
	return func(v any, _ []any, _ map[string]any) (bool, error) {
		n, f, k, ok := jNum(v)
		if !ok {
			if u, isU := v.(*jUndefined); isU {
				return false, u.err()
			}
			return false, jErr("TypeError", "not all arguments converted during string formatting")
		}
		if k == 2 {
			m := math.Mod(f, 2)
			if m < 0 {
				m += 2
			}
			return m == float64(want), nil
		}
		return ((n%2)+2)%2 == want, nil
	}
}

func divisibleTest(v any, p []any, kw map[string]any) (bool, error) {
	r, err := jArith("%", v, jArg(p, kw, 0, "num", nil))
	if err != nil {
		return false, err
	}
	return pyEqual(r, int64(0)), nil
}

func caseTest(f func(string) string) func(v any, _ []any, _ map[string]any) (bool, error) {
	return func(v any, _ []any, _ map[string]any) (bool, error) {
		s := jStr(v)
		return f(s) == s, nil
	}
}

func strFilter(f func(string) string) jFilterFunc {
	return func(v any, _ []any, _ map[string]any) (any, error) { return f(jStr(v)), nil }
}

func fDefault(v any, pos []any, kw map[string]any) (any, error) {
	def := jArg(pos, kw, 0, "default_value", "")
	boolean := jTruth(jArg(pos, kw, 1, "boolean", false))
	if _, u := v.(*jUndefined); u || (boolean && !jTruth(v)) {
		return def, nil
	}
	return v, nil
}

func fJoin(v any, pos []any, kw map[string]any) (any, error) {
	sep := jStr(jArg(pos, kw, 0, "d", ""))
	items, err := jIter(v)
	if err != nil {
		return nil, err
	}
	if attr := jArg(pos, kw, 1, "attribute", nil); attr != nil {
		for i, it := range items {
			if items[i], err = jGetItem(it, attr); err != nil {
				return nil, err
			}
		}
	}
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = jStr(it)
	}
	return strings.Join(parts, sep), nil
}

// pyTitle is jinja2's title filter: each word (split at whitespace and
// -({[<) starts upper case, the rest lower.
func pyTitle(s string) string {
	var b strings.Builder
	start := true
	for _, r := range s {
		if unicode.IsSpace(r) || strings.ContainsRune("-({[<", r) {
			b.WriteRune(r)
			start = true
			continue
		}
		if start {
			b.WriteString(strings.ToUpper(string(r)))
			start = false
		} else {
			b.WriteString(strings.ToLower(string(r)))
		}
	}
	return b.String()
}

// pyCapitalize is str.capitalize: the first character upper, the rest lower.
func pyCapitalize(s string) string {
	r, w := utf8.DecodeRuneInString(s)
	if w == 0 {
		return s
	}
	return strings.ToUpper(string(r)) + strings.ToLower(s[w:])
}

func fTrim(v any, pos []any, kw map[string]any) (any, error) {
	s := jStr(v)
	if c := jArg(pos, kw, 0, "chars", nil); c != nil {
		return strings.Trim(s, jStr(c)), nil
	}
	return strings.TrimSpace(s), nil
}

func fReplace(v any, pos []any, kw map[string]any) (any, error) {
	if len(pos) < 2 {
		return nil, jErr("TypeError", "do_replace() missing required arguments 'old' and 'new'")
	}
	n, err := jArgInt(pos, kw, 2, "count", -1)
	if err != nil {
		return nil, err
	}
	return strings.Replace(jStr(v), jStr(pos[0]), jStr(pos[1]), int(n)), nil
}

func fLength(v any, _ []any, _ map[string]any) (any, error) {
	switch x := v.(type) {
	case string:
		return int64(utf8.RuneCountInString(x)), nil
	case []any:
		return int64(len(x)), nil
	case tuple:
		return int64(len(x)), nil
	case map[string]any:
		return int64(len(x)), nil
	case *jUndefined:
		return int64(0), nil
	}
	return nil, jErr("TypeError", "object of type '%s' has no len()", jTypeName(v))
}

func fFirst(v any, _ []any, _ map[string]any) (any, error) {
	items, err := jIter(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return &jUndefined{hint: "No first item, sequence was empty."}, nil
	}
	return items[0], nil
}

func fLast(v any, _ []any, _ map[string]any) (any, error) {
	items, err := jIter(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return &jUndefined{hint: "No last item, sequence was empty."}, nil
	}
	return items[len(items)-1], nil
}

func fList(v any, _ []any, _ map[string]any) (any, error) {
	items, err := jIter(v)
	if err != nil {
		return nil, err
	}
	return append([]any{}, items...), nil
}

// fInt is jinja2's int filter: int(value), else int(float(value)), else
// the default (0).
func fInt(v any, pos []any, kw map[string]any) (any, error) {
	def := jArg(pos, kw, 0, "default", int64(0))
	base, err := jArgInt(pos, kw, 1, "base", 10)
	if err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case *jUndefined:
		return nil, x.err()
	case int64:
		return x, nil
	case bool:
		return b2i(x), nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) || math.Abs(x) > 9.2e18 {
			return def, nil
		}
		return int64(x), nil
	case string:
		t := strings.ReplaceAll(strings.TrimSpace(x), "_", "")
		u := strings.TrimLeft(t, "+-")
		if len(u) > 2 && u[0] == '0' && map[int64]byte{16: 'x', 8: 'o', 2: 'b'}[base] == u[1]|0x20 {
			t = t[:len(t)-len(u)] + u[2:] // int("0x1A", 16) takes the prefix
		}
		if n, err := strconv.ParseInt(t, int(base), 64); err == nil {
			return n, nil
		}
		if base == 10 {
			if f, err := strconv.ParseFloat(t, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) && !strings.ContainsAny(t, "xXpP") {
				return int64(f), nil
			}
		}
	}
	return def, nil
}

func fFloat(v any, pos []any, kw map[string]any) (any, error) {
	def := jArg(pos, kw, 0, "default", 0.0)
	switch x := v.(type) {
	case *jUndefined:
		return nil, x.err()
	case int64:
		return float64(x), nil
	case bool:
		return float64(b2i(x)), nil
	case float64:
		return x, nil
	case string:
		if f, err := parsePyFloat(x); err == nil {
			return f, nil
		}
	}
	return def, nil
}

// parsePyFloat is Python's float() of a string.
func parsePyFloat(s string) (float64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch strings.TrimLeft(t, "+-") {
	case "inf", "infinity":
		if strings.HasPrefix(t, "-") {
			return math.Inf(-1), nil
		}
		return math.Inf(1), nil
	case "nan":
		return math.NaN(), nil
	}
	if strings.Contains(t, "__") || strings.HasPrefix(t, "_") || strings.HasSuffix(t, "_") || strings.Contains(t, "_.") || strings.Contains(t, "._") {
		return 0, fmt.Errorf("could not convert string to float: %s", pyQuote(s))
	}
	t = strings.ReplaceAll(t, "_", "")
	if t == "" || strings.ContainsAny(t, "xpn") {
		return 0, fmt.Errorf("could not convert string to float: %s", pyQuote(s))
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil && !isRangeErr(err) {
		return 0, fmt.Errorf("could not convert string to float: %s", pyQuote(s))
	}
	return f, nil
}

func fAbs(v any, _ []any, _ map[string]any) (any, error) {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return -x, nil
		}
		return x, nil
	case float64:
		return math.Abs(x), nil
	case bool:
		return b2i(x), nil
	}
	return nil, jErr("TypeError", "bad operand type for abs(): '%s'", jTypeName(v))
}

// fRound is jinja2's round: Python's round() (to the nearest, ties to
// even, on the float's exact value), ceil or floor; the result is a float.
func fRound(v any, pos []any, kw map[string]any) (any, error) {
	prec, err := jArgInt(pos, kw, 0, "precision", 0)
	if err != nil {
		return nil, err
	}
	method := jStr(jArg(pos, kw, 1, "method", "common"))
	i, f, k, ok := jNum(v)
	if !ok {
		return nil, jErr("TypeError", "type %s doesn't define __round__ method", jTypeName(v))
	}
	if k == 1 {
		if method == "common" {
			return i, nil
		}
		return float64(i), nil
	}
	p := math.Pow(10, float64(prec))
	switch method {
	case "common":
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return f, nil
		}
		if prec >= 0 {
			r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', int(prec), 64), 64)
			return r, nil
		}
		return math.RoundToEven(f*p) / p, nil
	case "ceil":
		return math.Ceil(f*p) / p, nil
	case "floor":
		return math.Floor(f*p) / p, nil
	}
	return nil, jErr("FilterArgumentError", "method must be common, ceil or floor")
}

func fSum(v any, pos []any, kw map[string]any) (any, error) {
	items, err := jIter(v)
	if err != nil {
		return nil, err
	}
	var acc any = jArg(pos, kw, 1, "start", int64(0))
	attr := jArg(pos, kw, 0, "attribute", nil)
	for _, it := range items {
		if attr != nil {
			if it, err = jGetItem(it, attr); err != nil {
				return nil, err
			}
		}
		if acc, err = jArith("+", acc, it); err != nil {
			return nil, err
		}
	}
	return acc, nil
}

// jSortKey lower-cases strings (jinja2's case_sensitive=False).
func jSortKey(v any, caseSensitive bool) any {
	if s, ok := v.(string); ok && !caseSensitive {
		return strings.ToLower(s)
	}
	return v
}

func fMinMax(v any, sign int) (any, error) {
	items, err := jIter(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return &jUndefined{hint: "No aggregated item, sequence was empty."}, nil
	}
	best := items[0]
	for _, it := range items[1:] {
		c, err := pyCompare("<", jSortKey(it, false), jSortKey(best, false))
		if err != nil {
			return nil, err
		}
		if c*sign > 0 {
			best = it
		}
	}
	return best, nil
}

func jSortItems(items []any, reverse, caseSensitive bool, attr any) ([]any, error) {
	out := append([]any{}, items...)
	keys := make([]any, len(out))
	for i, it := range out {
		k := it
		if attr != nil {
			var err error
			if k, err = jGetItem(it, attr); err != nil {
				return nil, err
			}
		}
		keys[i] = jSortKey(k, caseSensitive)
	}
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	var sortErr error
	sort.SliceStable(idx, func(a, b int) bool {
		c, err := pyCompare("<", keys[idx[a]], keys[idx[b]])
		if err != nil && sortErr == nil {
			sortErr = err
		}
		if reverse {
			return c > 0
		}
		return c < 0
	})
	if sortErr != nil {
		return nil, sortErr
	}
	sorted := make([]any, len(out))
	for i, j := range idx {
		sorted[i] = out[j]
	}
	return sorted, nil
}

func fSort(v any, pos []any, kw map[string]any) (any, error) {
	items, err := jIter(v)
	if err != nil {
		return nil, err
	}
	return jSortItems(items, jTruth(jArg(pos, kw, 0, "reverse", false)), jTruth(jArg(pos, kw, 1, "case_sensitive", false)), jArg(pos, kw, 2, "attribute", nil))
}

func fReverse(v any, _ []any, _ map[string]any) (any, error) {
	if s, ok := v.(string); ok {
		r := []rune(s)
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
		return string(r), nil
	}
	items, err := jIter(v)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(items))
	for i, it := range items {
		out[len(items)-1-i] = it
	}
	return out, nil
}

func fUnique(v any, pos []any, kw map[string]any) (any, error) {
	items, err := jIter(v)
	if err != nil {
		return nil, err
	}
	cs := jTruth(jArg(pos, kw, 0, "case_sensitive", false))
	var out, seen []any
	for _, it := range items {
		k := jSortKey(it, cs)
		dup := false
		for _, s := range seen {
			if pyEqual(s, k) {
				dup = true
				break
			}
		}
		if !dup {
			seen = append(seen, k)
			out = append(out, it)
		}
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

func fDictsort(v any, pos []any, kw map[string]any) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, jErr("TypeError", "'%s' object has no attribute 'items'", jTypeName(v))
	}
	cs := jTruth(jArg(pos, kw, 0, "case_sensitive", false))
	by := jStr(jArg(pos, kw, 1, "by", "key"))
	rev := jTruth(jArg(pos, kw, 2, "reverse", false))
	var attr any = int64(0)
	if by == "value" {
		attr = int64(1)
	}
	return jSortItems(jSortedItems(m), rev, cs, attr)
}

func fItems(v any, _ []any, _ map[string]any) (any, error) {
	switch m := v.(type) {
	case map[string]any:
		return jSortedItems(m), nil
	case *jUndefined:
		return []any{}, nil
	}
	return nil, jErr("TypeError", "Can only get item pairs from a mapping.")
}

func fMap(v any, pos []any, kw map[string]any) (any, error) {
	items, err := jIter(v)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(items))
	if attr, ok := kw["attribute"]; ok {
		def, hasDef := kw["default"]
		for i, it := range items {
			if out[i], err = jGetItem(it, attr); err != nil {
				return nil, err
			}
			if _, u := out[i].(*jUndefined); u && hasDef {
				out[i] = def
			}
		}
		return out, nil
	}
	if len(pos) == 0 {
		return nil, jErr("FilterArgumentError", "map requires a filter argument")
	}
	name := jStr(pos[0])
	f, ok := jFilters[name]
	if !ok {
		return nil, jErr("TemplateRuntimeError", "No filter named '%s' found.", name)
	}
	for i, it := range items {
		if out[i], err = f(it, pos[1:], kw); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func selectFilter(keep bool) jFilterFunc {
	return func(v any, pos []any, kw map[string]any) (any, error) {
		items, err := jIter(v)
		if err != nil {
			return nil, err
		}
		test := func(x any) (bool, error) { return jTruth(x), nil }
		if len(pos) > 0 {
			name := jStr(pos[0])
			t, ok := jTests[name]
			if !ok {
				return nil, jErr("TemplateRuntimeError", "No test named '%s' found.", name)
			}
			test = func(x any) (bool, error) { return t(x, pos[1:], kw) }
		}
		out := []any{}
		for _, it := range items {
			ok, err := test(it)
			if err != nil {
				return nil, err
			}
			if ok == keep {
				out = append(out, it)
			}
		}
		return out, nil
	}
}

func selectAttrFilter(keep bool) jFilterFunc {
	return func(v any, pos []any, kw map[string]any) (any, error) {
		if len(pos) == 0 {
			return nil, jErr("FilterArgumentError", "Missing parameter for attribute name")
		}
		items, err := jIter(v)
		if err != nil {
			return nil, err
		}
		test := func(x any) (bool, error) { return jTruth(x), nil }
		if len(pos) > 1 {
			name := jStr(pos[1])
			t, ok := jTests[name]
			if !ok {
				return nil, jErr("TemplateRuntimeError", "No test named '%s' found.", name)
			}
			test = func(x any) (bool, error) { return t(x, pos[2:], kw) }
		}
		out := []any{}
		for _, it := range items {
			a, err := jGetItem(it, pos[0])
			if err != nil {
				return nil, err
			}
			ok, err := test(a)
			if err != nil {
				return nil, err
			}
			if ok == keep {
				out = append(out, it)
			}
		}
		return out, nil
	}
}

// fIndent is jinja2's indent: lines after the first get width spaces
// (the first too with first=true; blank lines only with blank=true).
func fIndent(v any, pos []any, kw map[string]any) (any, error) {
	width := jArg(pos, kw, 0, "width", int64(4))
	pad := ""
	if w, ok := width.(string); ok {
		pad = w
	} else {
		n, _, _, _ := jNum(width)
		pad = strings.Repeat(" ", int(max(0, min(n, 1000))))
	}
	first := jTruth(jArg(pos, kw, 1, "first", false))
	blank := jTruth(jArg(pos, kw, 2, "blank", false))
	lines := strings.Split(jStr(v), "\n")
	for i, l := range lines {
		if (i == 0 && !first) || (!blank && strings.TrimSpace(l) == "") {
			continue
		}
		lines[i] = pad + l
	}
	return strings.Join(lines, "\n"), nil
}

func fBatch(v any, pos []any, kw map[string]any) (any, error) {
	n, err := jArgInt(pos, kw, 0, "linecount", 0)
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, jErr("ValueError", "batch size must be positive")
	}
	fill, hasFill := jArg(pos, kw, 1, "fill_with", nil), len(pos) > 1 || kw["fill_with"] != nil
	items, err := jIter(v)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for i := 0; i < len(items); i += int(n) {
		end := min(i+int(n), len(items))
		b := append([]any{}, items[i:end]...)
		for hasFill && len(b) < int(n) {
			b = append(b, fill)
		}
		out = append(out, b)
	}
	return out, nil
}

func fToJSON(v any, _ []any, _ map[string]any) (any, error) {
	var b strings.Builder
	if err := writeJSONSorted(&b, v); err != nil {
		return nil, err
	}
	s := b.String()
	r := strings.NewReplacer("<", `\u003c`, ">", `\u003e`, "&", `\u0026`, "'", `\u0027`)
	return r.Replace(s), nil
}

// writeJSONSorted writes v as Python's json.dumps(sort_keys=True) does.
func writeJSONSorted(b *strings.Builder, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		switch {
		case math.IsNaN(x):
			b.WriteString("NaN")
		case math.IsInf(x, 1):
			b.WriteString("Infinity")
		case math.IsInf(x, -1):
			b.WriteString("-Infinity")
		default:
			b.WriteString(pyFloatRepr(x))
		}
	case string:
		enc, _ := json.Marshal(x)
		// Python escapes non-ASCII (ensure_ascii=True)
		for _, r := range string(enc) {
			if r > 0x7e {
				if r > 0xffff {
					r1, r2 := utf16Surrogates(r)
					fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
				} else {
					fmt.Fprintf(b, `\u%04x`, r)
				}
				continue
			}
			b.WriteRune(r)
		}
	case []any, tuple:
		items, _ := jIter(x)
		b.WriteByte('[')
		for i, it := range items {
			if i > 0 {
				b.WriteString(", ")
			}
			if err := writeJSONSorted(b, it); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		b.WriteByte('{')
		for i, k := range sortedKeys(x) {
			if i > 0 {
				b.WriteString(", ")
			}
			_ = writeJSONSorted(b, k)
			b.WriteString(": ")
			if err := writeJSONSorted(b, x[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case *jUndefined:
		return x.err()
	default:
		return jErr("TypeError", "Object of type %s is not JSON serializable", jTypeName(v))
	}
	return nil
}

func utf16Surrogates(r rune) (rune, rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}

// fURLEncode is jinja2's urlencode: a string is quoted (keeping "/"), a
// dict or a list of pairs becomes a query string.
func fURLEncode(v any, _ []any, _ map[string]any) (any, error) {
	quote := func(s string, safe string) string {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < 0x80 && (unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c)) || strings.IndexByte("_.-~"+safe, c) >= 0) {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
		return b.String()
	}
	var pairs []any
	switch x := v.(type) {
	case string:
		return quote(x, "/"), nil
	case map[string]any:
		pairs = jSortedItems(x)
	case []any, tuple:
		pairs, _ = jIter(x)
	default:
		return quote(jStr(v), "/"), nil
	}
	parts := make([]string, 0, len(pairs))
	for _, p := range pairs {
		kv, err := jIter(p)
		if err != nil || len(kv) != 2 {
			return nil, jErr("ValueError", "urlencode needs a mapping or pairs")
		}
		qs := func(x any) string { return strings.ReplaceAll(quote(jStr(x), ""), "%20", "+") }
		parts = append(parts, qs(kv[0])+"="+qs(kv[1]))
	}
	return strings.Join(parts, "&"), nil
}

func fEscape(v any, _ []any, _ map[string]any) (any, error) {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")
	return r.Replace(jStr(v)), nil
}

func fFormat(v any, pos []any, kw map[string]any) (any, error) {
	if len(kw) > 0 {
		return pyPercentFormat(jStr(v), kw)
	}
	return pyPercentFormat(jStr(v), tuple(pos))
}

func fCenter(v any, pos []any, kw map[string]any) (any, error) {
	w, err := jArgInt(pos, kw, 0, "width", 80)
	if err != nil {
		return nil, err
	}
	s := jStr(v)
	n := int(w) - utf8.RuneCountInString(s)
	if n <= 0 {
		return s, nil
	}
	// Python puts the odd space on the left when the width is odd
	left := n / 2
	if n%2 == 1 && int(w)%2 == 1 {
		left++
	}
	return strings.Repeat(" ", left) + s + strings.Repeat(" ", n-left), nil
}

var wordRe = regexp.MustCompile(`[\p{L}\p{N}_]+`)

func fWordcount(v any, _ []any, _ map[string]any) (any, error) {
	return int64(len(wordRe.FindAllString(jStr(v), -1))), nil
}

func fTruncate(v any, pos []any, kw map[string]any) (any, error) {
	s := jStr(v)
	length, err := jArgInt(pos, kw, 0, "length", 255)
	if err != nil {
		return nil, err
	}
	killwords := jTruth(jArg(pos, kw, 1, "killwords", false))
	end := jStr(jArg(pos, kw, 2, "end", "..."))
	leeway, err := jArgInt(pos, kw, 3, "leeway", 5)
	if err != nil {
		return nil, err
	}
	r := []rune(s)
	if int64(len(r)) <= length+leeway {
		return s, nil
	}
	cut := int(length) - utf8.RuneCountInString(end)
	if cut < 0 {
		cut = 0
	}
	if killwords {
		return string(r[:cut]) + end, nil
	}
	head := string(r[:cut])
	if i := strings.LastIndex(head, " "); i >= 0 {
		head = head[:i]
	} else {
		head = ""
	}
	return head + end, nil
}

// Methods on values: what catalogs call on strings and dicts.

var jMethods = map[string]map[string]bool{
	"str": {"upper": true, "lower": true, "strip": true, "lstrip": true, "rstrip": true, "split": true, "rsplit": true,
		"replace": true, "startswith": true, "endswith": true, "join": true, "title": true, "capitalize": true,
		"format": true, "find": true, "count": true, "zfill": true, "splitlines": true, "isdigit": true, "isalpha": true},
	"dict":      {"get": true, "items": true, "keys": true, "values": true},
	"list":      {"index": true, "count": true},
	"tuple":     {"index": true, "count": true},
	"Timestamp": {"strftime": true, "isoformat": true},
}

func jHasMethod(v any, name string) bool {
	return jMethods[jTypeName(v)][name]
}

func jCallMethod(m *jMethod, pos []any, kw map[string]any) (any, error) {
	arg := func(i int) (string, bool) {
		if i < len(pos) {
			if pos[i] == nil {
				return "", false
			}
			return jStr(pos[i]), true
		}
		return "", false
	}
	switch r := m.recv.(type) {
	case string:
		switch m.name {
		case "upper":
			return strings.ToUpper(r), nil
		case "lower":
			return strings.ToLower(r), nil
		case "title":
			return pyStrTitle(r), nil
		case "capitalize":
			return pyCapitalize(r), nil
		case "strip", "lstrip", "rstrip":
			cut, has := arg(0)
			f := map[string]func(string, string) string{"strip": strings.Trim, "lstrip": strings.TrimLeft, "rstrip": strings.TrimRight}[m.name]
			if !has {
				g := map[string]func(string, func(rune) bool) string{"strip": strings.TrimFunc, "lstrip": strings.TrimLeftFunc, "rstrip": strings.TrimRightFunc}[m.name]
				return g(r, unicode.IsSpace), nil
			}
			return f(r, cut), nil
		case "split", "rsplit":
			sep, has := arg(0)
			max, err := jArgInt(pos, kw, 1, "maxsplit", -1)
			if err != nil {
				return nil, err
			}
			var parts []string
			switch {
			case !has && max < 0:
				parts = strings.Fields(r)
			case !has:
				parts = pySplitFields(r, int(max), m.name == "rsplit")
			case sep == "":
				return nil, jErr("ValueError", "empty separator")
			case m.name == "rsplit" && max >= 0:
				parts = rsplitN(r, sep, int(max))
			default:
				n := -1
				if max >= 0 {
					n = int(max) + 1
				}
				parts = strings.SplitN(r, sep, n)
			}
			out := make([]any, len(parts))
			for i, p := range parts {
				out[i] = p
			}
			return out, nil
		case "splitlines":
			lines := strings.Split(strings.TrimSuffix(r, "\n"), "\n")
			if r == "" {
				lines = nil
			}
			out := make([]any, len(lines))
			for i, l := range lines {
				out[i] = strings.TrimSuffix(l, "\r")
			}
			return out, nil
		case "replace":
			if len(pos) < 2 {
				return nil, jErr("TypeError", "replace expected at least 2 arguments, got %d", len(pos))
			}
			n, err := jArgInt(pos, kw, 2, "count", -1)
			if err != nil {
				return nil, err
			}
			return strings.Replace(r, jStr(pos[0]), jStr(pos[1]), int(n)), nil
		case "startswith", "endswith":
			if len(pos) < 1 {
				return nil, jErr("TypeError", "%s() takes at least 1 argument (0 given)", m.name)
			}
			test := strings.HasPrefix
			if m.name == "endswith" {
				test = strings.HasSuffix
			}
			if t, ok := pos[0].(tuple); ok {
				for _, p := range t {
					if test(r, jStr(p)) {
						return true, nil
					}
				}
				return false, nil
			}
			return test(r, jStr(pos[0])), nil
		case "join":
			if len(pos) < 1 {
				return nil, jErr("TypeError", "str.join() takes exactly one argument (0 given)")
			}
			items, err := jIter(pos[0])
			if err != nil {
				return nil, err
			}
			parts := make([]string, len(items))
			for i, it := range items {
				s, ok := it.(string)
				if !ok {
					return nil, jErr("TypeError", "sequence item %d: expected str instance, %s found", i, jTypeName(it))
				}
				parts[i] = s
			}
			return strings.Join(parts, r), nil
		case "find":
			s, _ := arg(0)
			i := strings.Index(r, s)
			if i > 0 {
				i = utf8.RuneCountInString(r[:i])
			}
			return int64(i), nil
		case "count":
			s, _ := arg(0)
			if s == "" {
				return int64(utf8.RuneCountInString(r) + 1), nil
			}
			return int64(strings.Count(r, s)), nil
		case "zfill":
			w, err := jArgInt(pos, kw, 0, "width", 0)
			if err != nil {
				return nil, err
			}
			n := int(w) - utf8.RuneCountInString(r)
			if n <= 0 {
				return r, nil
			}
			if strings.HasPrefix(r, "-") || strings.HasPrefix(r, "+") {
				return r[:1] + strings.Repeat("0", n) + r[1:], nil
			}
			return strings.Repeat("0", n) + r, nil
		case "isdigit", "isalpha":
			if r == "" {
				return false, nil
			}
			f := unicode.IsDigit
			if m.name == "isalpha" {
				f = unicode.IsLetter
			}
			for _, c := range r {
				if !f(c) {
					return false, nil
				}
			}
			return true, nil
		case "format":
			return pyStrFormat(r, pos, kw)
		}
	case map[string]any:
		switch m.name {
		case "get":
			if len(pos) < 1 {
				return nil, jErr("TypeError", "get expected at least 1 argument, got 0")
			}
			if s, ok := pos[0].(string); ok {
				if v, ok := r[s]; ok {
					return v, nil
				}
			}
			if len(pos) > 1 {
				return pos[1], nil
			}
			return nil, nil
		case "items":
			return jSortedItems(r), nil
		case "keys":
			keys := sortedKeys(r)
			out := make([]any, len(keys))
			for i, k := range keys {
				out[i] = k
			}
			return out, nil
		case "values":
			keys := sortedKeys(r)
			out := make([]any, len(keys))
			for i, k := range keys {
				out[i] = r[k]
			}
			return out, nil
		}
	case []any, tuple:
		items, _ := jIter(r)
		if len(pos) < 1 {
			return nil, jErr("TypeError", "%s() takes exactly one argument (0 given)", m.name)
		}
		n := int64(0)
		for i, it := range items {
			if jEqual(it, pos[0]) {
				if m.name == "index" {
					return int64(i), nil
				}
				n++
			}
		}
		if m.name == "index" {
			return nil, jErr("ValueError", "%s is not in list", pyRepr(pos[0]))
		}
		return n, nil
	case time.Time:
		switch m.name {
		case "isoformat":
			return pyIsoformat(r), nil
		case "strftime":
			f, _ := arg(0)
			return pyStrftime(r, f), nil
		}
	}
	return nil, jErr("TypeError", "intakefs does not support %s.%s()", jTypeName(m.recv), m.name)
}

// pyStrTitle is str.title(): a letter after a non-letter is upper case.
func pyStrTitle(s string) string {
	var b strings.Builder
	prevLetter := false
	for _, r := range s {
		if unicode.IsLetter(r) {
			if prevLetter {
				b.WriteRune(unicode.ToLower(r))
			} else {
				b.WriteRune(unicode.ToUpper(r))
			}
			prevLetter = true
			continue
		}
		prevLetter = false
		b.WriteRune(r)
	}
	return b.String()
}

func pySplitFields(s string, max int, fromRight bool) []string {
	f := strings.Fields(s)
	if max < 0 || len(f) <= max+1 {
		return f
	}
	if !fromRight {
		// the rest after max splits keeps its own spacing
		rest := s
		var out []string
		for i := 0; i < max; i++ {
			rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
			j := strings.IndexFunc(rest, unicode.IsSpace)
			out = append(out, rest[:j])
			rest = rest[j:]
		}
		return append(out, strings.TrimLeftFunc(rest, unicode.IsSpace))
	}
	rest := s
	var out []string
	for i := 0; i < max; i++ {
		rest = strings.TrimRightFunc(rest, unicode.IsSpace)
		j := strings.LastIndexFunc(rest, unicode.IsSpace)
		out = append([]string{rest[j+1:]}, out...)
		rest = rest[:j+1]
	}
	return append([]string{strings.TrimRightFunc(rest, unicode.IsSpace)}, out...)
}

func rsplitN(s, sep string, max int) []string {
	var out []string
	for i := 0; i < max; i++ {
		j := strings.LastIndex(s, sep)
		if j < 0 {
			break
		}
		out = append([]string{s[j+len(sep):]}, out...)
		s = s[:j]
	}
	return append([]string{s}, out...)
}

// pyPercentFormat is Python's "fmt % args" for the common conversions:
// %s %r %d %i %f %e %g %x %o %c %% with flags, width and precision.
func pyPercentFormat(f string, args any) (any, error) {
	var list []any
	var named map[string]any
	switch a := args.(type) {
	case tuple:
		list = a
	case map[string]any:
		named = a
	default:
		list = []any{args}
	}
	var b strings.Builder
	next := 0
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(f) {
			return nil, jErr("ValueError", "incomplete format")
		}
		var val any
		haveVal := false
		if f[i] == '(' {
			j := strings.IndexByte(f[i:], ')')
			if j < 0 || named == nil {
				return nil, jErr("TypeError", "format requires a mapping")
			}
			key := f[i+1 : i+j]
			v, ok := named[key]
			if !ok {
				return nil, jErr("KeyError", "%s", pyQuote(key))
			}
			val, haveVal = v, true
			i += j + 1
		}
		start := i
		for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
			i++
		}
		for i < len(f) && (f[i] >= '0' && f[i] <= '9' || f[i] == '.') {
			i++
		}
		if i >= len(f) {
			return nil, jErr("ValueError", "incomplete format")
		}
		spec := f[start:i]
		conv := f[i]
		if conv == '%' {
			b.WriteByte('%')
			continue
		}
		if !haveVal {
			if named != nil && list == nil {
				return nil, jErr("TypeError", "format requires a mapping")
			}
			if next >= len(list) {
				return nil, jErr("TypeError", "not enough arguments for format string")
			}
			val = list[next]
			next++
		}
		switch conv {
		case 's':
			b.WriteString(fmt.Sprintf("%"+spec+"s", jStr(val)))
		case 'r', 'a':
			b.WriteString(fmt.Sprintf("%"+spec+"s", pyRepr(val)))
		case 'd', 'i', 'u':
			n, fl, k, ok := jNum(val)
			if !ok {
				return nil, jErr("TypeError", "%%%c format: a real number is required, not %s", conv, jTypeName(val))
			}
			if k == 2 {
				n = int64(fl)
			}
			b.WriteString(fmt.Sprintf("%"+spec+"d", n))
		case 'f', 'F', 'e', 'E', 'g', 'G':
			n, fl, k, ok := jNum(val)
			if !ok {
				return nil, jErr("TypeError", "must be real number, not %s", jTypeName(val))
			}
			if k == 1 {
				fl = float64(n)
			}
			if !strings.Contains(spec, ".") {
				spec += ".6"
			}
			b.WriteString(fmt.Sprintf("%"+spec+string(conv), fl))
		case 'x', 'X', 'o':
			n, _, k, ok := jNum(val)
			if !ok || k != 1 {
				return nil, jErr("TypeError", "%%%c format: an integer is required, not %s", conv, jTypeName(val))
			}
			b.WriteString(fmt.Sprintf("%"+spec+string(conv), n))
		case 'c':
			b.WriteString(jStr(val))
		default:
			return nil, jErr("ValueError", "unsupported format character '%c' (0x%x) at index %d", conv, conv, i)
		}
	}
	if list != nil && next < len(list) && len(list) > 0 {
		if _, isTuple := args.(tuple); isTuple {
			return nil, jErr("TypeError", "not all arguments converted during string formatting")
		}
	}
	return b.String(), nil
}

// pyStrFormat is str.format for {} {0} {name} with an optional :spec
// of the simple kinds (width, precision, d, f, s).
func pyStrFormat(f string, pos []any, kw map[string]any) (any, error) {
	var b strings.Builder
	auto := 0
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c == '}' {
			if i+1 < len(f) && f[i+1] == '}' {
				i++
			}
			b.WriteByte('}')
			continue
		}
		if c != '{' {
			b.WriteByte(c)
			continue
		}
		if i+1 < len(f) && f[i+1] == '{' {
			b.WriteByte('{')
			i++
			continue
		}
		j := strings.IndexByte(f[i:], '}')
		if j < 0 {
			return nil, jErr("ValueError", "Single '{' encountered in format string")
		}
		field := f[i+1 : i+j]
		i += j
		spec := ""
		if k := strings.IndexByte(field, ':'); k >= 0 {
			field, spec = field[:k], field[k+1:]
		}
		var v any
		switch {
		case field == "":
			if auto >= len(pos) {
				return nil, jErr("IndexError", "Replacement index %d out of range for positional args tuple", auto)
			}
			v = pos[auto]
			auto++
		case field[0] >= '0' && field[0] <= '9':
			n, _ := strconv.Atoi(field)
			if n >= len(pos) {
				return nil, jErr("IndexError", "Replacement index %d out of range for positional args tuple", n)
			}
			v = pos[n]
		default:
			var ok bool
			if v, ok = kw[field]; !ok {
				return nil, jErr("KeyError", "%s", pyQuote(field))
			}
		}
		if spec == "" {
			b.WriteString(jStr(v))
			continue
		}
		conv := spec[len(spec)-1]
		if strings.IndexByte("dfFeEgGxXos", conv) < 0 {
			b.WriteString(fmt.Sprintf("%"+spec+"s", jStr(v)))
			continue
		}
		s, err := pyPercentFormat("%"+spec, tuple{v})
		if err != nil {
			return nil, err
		}
		b.WriteString(s.(string))
	}
	return b.String(), nil
}

func pyIsoformat(t time.Time) string {
	s := t.Format("2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	if tzAware(t) {
		s += t.Format("-07:00")
	}
	return s
}

// pyStrftime handles the common % directives.
func pyStrftime(t time.Time, f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 >= len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		switch f[i] {
		case 'Y':
			fmt.Fprintf(&b, "%04d", t.Year())
		case 'y':
			fmt.Fprintf(&b, "%02d", t.Year()%100)
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'M':
			fmt.Fprintf(&b, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&b, "%02d", t.Second())
		case 'f':
			fmt.Fprintf(&b, "%06d", t.Nanosecond()/1000)
		case 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case 'b':
			b.WriteString(t.Format("Jan"))
		case 'B':
			b.WriteString(t.Format("January"))
		case 'a':
			b.WriteString(t.Format("Mon"))
		case 'A':
			b.WriteString(t.Format("Monday"))
		case 'z':
			if tzAware(t) {
				b.WriteString(t.Format("-0700"))
			}
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(f[i])
		}
	}
	return b.String()
}
