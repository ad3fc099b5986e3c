package engine

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// jRuntimeError is an error raised while rendering, with the Python
// exception type jinja2 would raise (UndefinedError, TypeError, ...).
type jRuntimeError struct {
	typ string
	msg string
}

func (e *jRuntimeError) Error() string { return e.msg }

func jErr(typ, format string, a ...any) error {
	return &jRuntimeError{typ, fmt.Sprintf(format, a...)}
}

// jUndefined is jinja2's Undefined: a name (or attribute, or item) that
// does not exist. It prints as "", is false, iterates as nothing, and
// fails when used in arithmetic or looked into.
type jUndefined struct {
	name string
	hint string // for a missing attribute or item of an existing object
}

func (u *jUndefined) err() error {
	if u.hint != "" {
		return jErr("UndefinedError", "%s", u.hint)
	}
	return jErr("UndefinedError", "'%s' is undefined", u.name)
}

// jFunc is a callable in the template's context (env, range, ...).
type jFunc func(pos []any, kw map[string]any) (any, error)

// jMethod is a method bound to a value: "a-b".split, d.items.
type jMethod struct {
	recv any
	name string
}

// jLoop is the loop variable of a for loop.
type jLoop struct {
	items []any
	i     int
}

// jTemplate is a compiled template.
type jTemplate struct{ body []jNode }

func jCompile(src string) (*jTemplate, error) {
	body, err := jParse(src)
	if err != nil {
		return nil, err
	}
	return &jTemplate{body}, nil
}

type jScope struct {
	vars   map[string]any
	parent *jScope
	st     *jState
}

// jState bounds one rendering: a catalog's template may not keep the
// daemon busy for long ("{% for i in range(99999) %}{% for j in ... %}").
type jState struct{ steps int }

// jMaxSteps is how many statements and loop iterations one rendering may
// execute.
const jMaxSteps = 1_000_000

func (sc *jScope) child() *jScope { return &jScope{vars: map[string]any{}, parent: sc, st: sc.st} }

func (s *jScope) lookup(name string) (any, bool) {
	for ; s != nil; s = s.parent {
		if v, ok := s.vars[name]; ok {
			return v, true
		}
	}
	return nil, false
}

// jMaxOutput bounds what one template may produce, so that a catalog
// cannot make the daemon build a gigabyte string ("{{ 'x' * 10**10 }}").
const jMaxOutput = 16 << 20

// jMaxItems bounds a string or list made by repetition ("x" * n).
const jMaxItems = 1 << 20

// jRecover turns a panic while rendering into an error: nothing a catalog
// writes may crash the daemon. The fuzz test turns it off to find them.
var jRecover = true

// Render executes the template with ctx (plain engine values), and
// globals under it (names in ctx hide them, as jinja2's context hides its
// globals). Neither map is changed: {% set %} writes to a scope of its own.
func (t *jTemplate) Render(ctx, globals map[string]any) (out string, err error) {
	if jRecover {
		defer func() {
			if r := recover(); r != nil {
				err = jErr("RuntimeError", "template failed: %v", r)
			}
		}()
	}
	var b strings.Builder
	st := &jState{}
	sc := &jScope{vars: map[string]any{}, st: st,
		parent: &jScope{vars: ctx, st: st, parent: &jScope{vars: globals, st: st}}}
	if err := jExec(t.body, sc, &b); err != nil {
		return "", err
	}
	return b.String(), nil
}

func jExec(nodes []jNode, sc *jScope, b *strings.Builder) error {
	for _, n := range nodes {
		if b.Len() > jMaxOutput {
			return jErr("MemoryError", "template output is larger than %d bytes", jMaxOutput)
		}
		if sc.st.steps++; sc.st.steps > jMaxSteps {
			return jErr("RuntimeError", "template takes more than %d steps", jMaxSteps)
		}
		switch x := n.(type) {
		case *jText:
			b.WriteString(x.s)
		case *jOutput:
			v, err := jEval(x.e, sc)
			if err != nil {
				return err
			}
			b.WriteString(jStr(v))
		case *jIf:
			done := false
			for i, c := range x.conds {
				v, err := jEval(c, sc)
				if err != nil {
					return err
				}
				if jTruth(v) {
					if err := jExec(x.bodies[i], sc, b); err != nil {
						return err
					}
					done = true
					break
				}
			}
			if !done && x.els != nil {
				if err := jExec(x.els, sc, b); err != nil {
					return err
				}
			}
		case *jFor:
			if err := jExecFor(x, sc, b); err != nil {
				return err
			}
		case *jSet:
			v, err := jEval(x.e, sc)
			if err != nil {
				return err
			}
			if err := jAssign(x.targets, v, sc.vars); err != nil {
				return err
			}
		}
	}
	return nil
}

func jAssign(targets []string, v any, into map[string]any) error {
	if len(targets) == 1 {
		into[targets[0]] = v
		return nil
	}
	items, err := jIter(v)
	if err != nil {
		return err
	}
	if len(items) != len(targets) {
		if len(items) < len(targets) {
			return jErr("ValueError", "not enough values to unpack (expected %d, got %d)", len(targets), len(items))
		}
		return jErr("ValueError", "too many values to unpack (expected %d)", len(targets))
	}
	for i, t := range targets {
		into[t] = items[i]
	}
	return nil
}

func jExecFor(x *jFor, sc *jScope, b *strings.Builder) error {
	iv, err := jEval(x.iter, sc)
	if err != nil {
		return err
	}
	items, err := jIter(iv)
	if err != nil {
		return err
	}
	if x.cond != nil {
		var kept []any
		for _, it := range items {
			if sc.st.steps++; sc.st.steps > jMaxSteps {
				return jErr("RuntimeError", "template takes more than %d steps", jMaxSteps)
			}
			inner := sc.child()
			if err := jAssign(x.targets, it, inner.vars); err != nil {
				return err
			}
			c, err := jEval(x.cond, inner)
			if err != nil {
				return err
			}
			if jTruth(c) {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	if len(items) == 0 {
		if x.els != nil {
			return jExec(x.els, sc, b)
		}
		return nil
	}
	loop := &jLoop{items: items}
	for i, it := range items {
		loop.i = i
		if sc.st.steps++; sc.st.steps > jMaxSteps {
			return jErr("RuntimeError", "template takes more than %d steps", jMaxSteps)
		}
		inner := sc.child()
		inner.vars["loop"] = loop
		if err := jAssign(x.targets, it, inner.vars); err != nil {
			return err
		}
		if err := jExec(x.body, inner, b); err != nil {
			return err
		}
	}
	return nil
}

func jEval(e jExpr, sc *jScope) (any, error) {
	switch x := e.(type) {
	case *jConst:
		return x.v, nil
	case *jName:
		if v, ok := sc.lookup(x.name); ok {
			return v, nil
		}
		return &jUndefined{name: x.name}, nil
	case *jListLit:
		out := make([]any, len(x.items))
		for i, it := range x.items {
			v, err := jEval(it, sc)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case *jTupleLit:
		out := make(tuple, len(x.items))
		for i, it := range x.items {
			v, err := jEval(it, sc)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case *jDictLit:
		out := make(map[string]any, len(x.keys))
		for i := range x.keys {
			k, err := jEval(x.keys[i], sc)
			if err != nil {
				return nil, err
			}
			v, err := jEval(x.vals[i], sc)
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, jErr("TypeError", "intakefs supports only string keys in dict literals, not %s", jTypeName(k))
			}
			out[ks] = v
		}
		return out, nil
	case *jGetattr:
		v, err := jEval(x.x, sc)
		if err != nil {
			return nil, err
		}
		return jGetAttr(v, x.name)
	case *jGetitem:
		v, err := jEval(x.x, sc)
		if err != nil {
			return nil, err
		}
		k, err := jEval(x.idx, sc)
		if err != nil {
			return nil, err
		}
		return jGetItem(v, k)
	case *jSliceX:
		v, err := jEval(x.x, sc)
		if err != nil {
			return nil, err
		}
		var idx [3]any
		for i, p := range []jExpr{x.lo, x.hi, x.step} {
			if p == nil {
				continue
			}
			if idx[i], err = jEval(p, sc); err != nil {
				return nil, err
			}
		}
		return jSlice(v, idx[0], idx[1], idx[2])
	case *jCall:
		fn, err := jEval(x.fn, sc)
		if err != nil {
			return nil, err
		}
		pos, kw, err := jEvalArgs(x.a, sc)
		if err != nil {
			return nil, err
		}
		return jCallValue(fn, pos, kw)
	case *jFilter:
		v, err := jEval(x.x, sc)
		if err != nil {
			return nil, err
		}
		pos, kw, err := jEvalArgs(x.a, sc)
		if err != nil {
			return nil, err
		}
		return jFilters[x.name](v, pos, kw)
	case *jTest:
		v, err := jEval(x.x, sc)
		if err != nil {
			return nil, err
		}
		pos, kw, err := jEvalArgs(x.a, sc)
		if err != nil {
			return nil, err
		}
		r, err := jTests[x.name](v, pos, kw)
		if err != nil {
			return nil, err
		}
		return r != x.negate, nil
	case *jUnary:
		v, err := jEval(x.x, sc)
		if err != nil {
			return nil, err
		}
		switch x.op {
		case "not":
			return !jTruth(v), nil
		case "-":
			switch n := v.(type) {
			case int64:
				if n == math.MinInt64 {
					return nil, jErr("OverflowError", "integer overflow (intakefs computes with 64-bit integers)")
				}
				return -n, nil
			case float64:
				return -n, nil
			case bool:
				return -b2i(n), nil
			case *jUndefined:
				return nil, n.err()
			}
			return nil, jErr("TypeError", "bad operand type for unary -: '%s'", jTypeName(v))
		default:
			switch n := v.(type) {
			case int64, float64:
				return n, nil
			case bool:
				return b2i(n), nil
			case *jUndefined:
				return nil, n.err()
			}
			return nil, jErr("TypeError", "bad operand type for unary +: '%s'", jTypeName(v))
		}
	case *jBinary:
		l, err := jEval(x.l, sc)
		if err != nil {
			return nil, err
		}
		switch x.op {
		case "and":
			if !jTruth(l) {
				return l, nil
			}
			return jEval(x.r, sc)
		case "or":
			if jTruth(l) {
				return l, nil
			}
			return jEval(x.r, sc)
		}
		r, err := jEval(x.r, sc)
		if err != nil {
			return nil, err
		}
		return jArith(x.op, l, r)
	case *jCompare:
		l, err := jEval(x.first, sc)
		if err != nil {
			return nil, err
		}
		for i, op := range x.ops {
			r, err := jEval(x.rest[i], sc)
			if err != nil {
				return nil, err
			}
			ok, err := jCompareOp(op, l, r)
			if err != nil {
				return nil, err
			}
			if !ok {
				return false, nil
			}
			l = r
		}
		return true, nil
	case *jConcat:
		var b strings.Builder
		for _, it := range x.items {
			v, err := jEval(it, sc)
			if err != nil {
				return nil, err
			}
			b.WriteString(jStr(v))
		}
		return b.String(), nil
	case *jCondX:
		c, err := jEval(x.cond, sc)
		if err != nil {
			return nil, err
		}
		if jTruth(c) {
			return jEval(x.a, sc)
		}
		if x.b == nil {
			return &jUndefined{hint: "the inline if-expression on line 1 evaluated to false and no else section was defined."}, nil
		}
		return jEval(x.b, sc)
	}
	return nil, jErr("RuntimeError", "intakefs: unknown expression %T", e)
}

func jEvalArgs(a jArgs, sc *jScope) ([]any, map[string]any, error) {
	pos := make([]any, len(a.pos))
	for i, e := range a.pos {
		v, err := jEval(e, sc)
		if err != nil {
			return nil, nil, err
		}
		pos[i] = v
	}
	var kw map[string]any
	if len(a.kwName) > 0 {
		kw = make(map[string]any, len(a.kwName))
		for i, n := range a.kwName {
			v, err := jEval(a.kwVal[i], sc)
			if err != nil {
				return nil, nil, err
			}
			kw[n] = v
		}
	}
	return pos, kw, nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// jStr is how a value prints in a template: Python's str(), undefined
// as nothing.
func jStr(v any) string {
	switch x := v.(type) {
	case *jUndefined:
		return ""
	case string:
		return x
	case *jLoop:
		return fmt.Sprintf("<LoopContext %d/%d>", x.i+1, len(x.items))
	case jFunc:
		return "<function>"
	case *jMethod:
		return fmt.Sprintf("<built-in method %s of %s object>", x.name, jTypeName(x.recv))
	}
	return pyStr(v)
}

// jTruth is Python's bool(v).
func jTruth(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case *jUndefined:
		return false
	case bool:
		return x
	case int64:
		return x != 0
	case int:
		return x != 0
	case float64:
		return x != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case tuple:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// jTypeName is the Python type name used in error messages.
func jTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case int64, int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []any:
		return "list"
	case tuple:
		return "tuple"
	case map[string]any:
		return "dict"
	case time.Time:
		return "Timestamp"
	case *jUndefined:
		return "Undefined"
	case jFunc:
		return "function"
	case *jMethod:
		return "builtin_function_or_method"
	case *jLoop:
		return "LoopContext"
	}
	return fmt.Sprintf("%T", v)
}

// jObjRepr is jinja2's object_type_repr, used in undefined hints.
func jObjRepr(v any) string {
	if v == nil {
		return "None"
	}
	return jTypeName(v) + " object"
}

// jIter is iter(v): the items a for loop or a filter walks.
//
// The slice is always the caller's own: a filter may change it in place
// (join with an attribute does) without touching a list in the context,
// which later renders share.
func jIter(v any) ([]any, error) {
	switch x := v.(type) {
	case []any:
		return slices.Clone(x), nil
	case tuple:
		return slices.Clone([]any(x)), nil
	case string:
		out := make([]any, 0, utf8.RuneCountInString(x))
		for _, r := range x {
			out = append(out, string(r))
		}
		return out, nil
	case map[string]any:
		keys := sortedKeys(x)
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = k
		}
		return out, nil
	case *jUndefined:
		return nil, nil
	case *jLoop:
		return slices.Clone(x.items), nil
	}
	return nil, jErr("TypeError", "'%s' object is not iterable", jTypeName(v))
}

func jNum(v any) (int64, float64, int, bool) {
	// kind: 1 int, 2 float
	switch x := v.(type) {
	case int64:
		return x, 0, 1, true
	case int:
		return int64(x), 0, 1, true
	case bool:
		return b2i(x), 0, 1, true
	case float64:
		return 0, x, 2, true
	}
	return 0, 0, 0, false
}

func jOverflow() error {
	return jErr("OverflowError", "integer overflow (intakefs computes with 64-bit integers)")
}

func jArith(op string, l, r any) (any, error) {
	if u, ok := l.(*jUndefined); ok {
		return nil, u.err()
	}
	if u, ok := r.(*jUndefined); ok {
		return nil, u.err()
	}
	li, lf, lk, lok := jNum(l)
	ri, rf, rk, rok := jNum(r)
	if lok && rok {
		if lk == 1 && rk == 1 {
			return jIntArith(op, li, ri)
		}
		a, b := lf, rf
		if lk == 1 {
			a = float64(li)
		}
		if rk == 1 {
			b = float64(ri)
		}
		switch op {
		case "+":
			return a + b, nil
		case "-":
			return a - b, nil
		case "*":
			return a * b, nil
		case "/":
			if b == 0 {
				return nil, jErr("ZeroDivisionError", "float division by zero")
			}
			return a / b, nil
		case "//":
			if b == 0 {
				return nil, jErr("ZeroDivisionError", "float floor division by zero")
			}
			return math.Floor(a / b), nil
		case "%":
			if b == 0 {
				return nil, jErr("ZeroDivisionError", "float modulo")
			}
			m := math.Mod(a, b)
			if m != 0 && (m < 0) != (b < 0) {
				m += b
			}
			return m, nil
		case "**":
			if a == 0 && b < 0 {
				return nil, jErr("ZeroDivisionError", "0.0 cannot be raised to a negative power")
			}
			return math.Pow(a, b), nil
		}
	}
	switch op {
	case "+":
		switch x := l.(type) {
		case string:
			if y, ok := r.(string); ok {
				return x + y, nil
			}
			return nil, jErr("TypeError", `can only concatenate str (not "%s") to str`, jTypeName(r))
		case []any:
			if y, ok := r.([]any); ok {
				out := make([]any, 0, len(x)+len(y))
				return append(append(out, x...), y...), nil
			}
			return nil, jErr("TypeError", `can only concatenate list (not "%s") to list`, jTypeName(r))
		case tuple:
			if y, ok := r.(tuple); ok {
				out := make(tuple, 0, len(x)+len(y))
				return append(append(out, x...), y...), nil
			}
			return nil, jErr("TypeError", `can only concatenate tuple (not "%s") to tuple`, jTypeName(r))
		}
	case "*":
		if n, _, k, ok := jNum(r); ok && k == 1 {
			if out, ok, err := jRepeat(l, n); ok {
				return out, err
			}
		}
		if n, _, k, ok := jNum(l); ok && k == 1 {
			if out, ok, err := jRepeat(r, n); ok {
				return out, err
			}
		}
		if _, isSeq := l.(string); isSeq {
			return nil, jErr("TypeError", "can't multiply sequence by non-int of type '%s'", jTypeName(r))
		}
	case "%":
		if s, ok := l.(string); ok {
			return pyPercentFormat(s, r)
		}
	}
	return nil, jErr("TypeError", "unsupported operand type(s) for %s: '%s' and '%s'", op, jTypeName(l), jTypeName(r))
}

func jRepeat(v any, n int64) (any, bool, error) {
	if n < 0 {
		n = 0
	}
	size := func(l int) error {
		if l > 0 && n > jMaxItems/int64(l) {
			return jErr("MemoryError", "repeated value would have more than %d items", jMaxItems)
		}
		return nil
	}
	switch x := v.(type) {
	case string:
		if err := size(len(x)); err != nil {
			return nil, true, err
		}
		return strings.Repeat(x, int(n)), true, nil
	case []any:
		if err := size(len(x)); err != nil {
			return nil, true, err
		}
		out := make([]any, 0, len(x)*int(n))
		for i := int64(0); i < n; i++ {
			out = append(out, x...)
		}
		return out, true, nil
	case tuple:
		if err := size(len(x)); err != nil {
			return nil, true, err
		}
		out := make(tuple, 0, len(x)*int(n))
		for i := int64(0); i < n; i++ {
			out = append(out, x...)
		}
		return out, true, nil
	}
	return nil, false, nil
}

func jIntArith(op string, a, b int64) (any, error) {
	switch op {
	case "+":
		s := a + b
		if (s > a) != (b > 0) {
			return nil, jOverflow()
		}
		return s, nil
	case "-":
		s := a - b
		if (s < a) != (b > 0) {
			return nil, jOverflow()
		}
		return s, nil
	case "*":
		if a == 0 || b == 0 {
			return int64(0), nil
		}
		s := a * b
		if s/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
			return nil, jOverflow()
		}
		return s, nil
	case "/":
		if b == 0 {
			return nil, jErr("ZeroDivisionError", "division by zero")
		}
		return float64(a) / float64(b), nil
	case "//":
		if b == 0 {
			return nil, jErr("ZeroDivisionError", "integer division or modulo by zero")
		}
		q := a / b
		if (a%b != 0) && ((a < 0) != (b < 0)) {
			q--
		}
		return q, nil
	case "%":
		if b == 0 {
			return nil, jErr("ZeroDivisionError", "integer modulo by zero")
		}
		m := a % b
		if m != 0 && (m < 0) != (b < 0) {
			m += b
		}
		return m, nil
	case "**":
		if b < 0 {
			if a == 0 {
				return nil, jErr("ZeroDivisionError", "0.0 cannot be raised to a negative power")
			}
			return math.Pow(float64(a), float64(b)), nil
		}
		r := int64(1)
		base := a
		for e := b; e > 0; e >>= 1 {
			if e&1 == 1 {
				v, err := jIntArith("*", r, base)
				if err != nil {
					return nil, err
				}
				r = v.(int64)
			}
			if e > 1 {
				v, err := jIntArith("*", base, base)
				if err != nil {
					return nil, err
				}
				base = v.(int64)
			}
		}
		return r, nil
	}
	return nil, jErr("TypeError", "unsupported operand %s", op)
}

// jEqual is Python's ==; an undefined value equals only another.
func jEqual(a, b any) bool {
	_, ua := a.(*jUndefined)
	_, ub := b.(*jUndefined)
	if ua || ub {
		return ua && ub
	}
	return pyEqual(a, b)
}

// pyEqual is Python's == for catalog values (1 == 1.0 == True).
func pyEqual(a, b any) bool {
	ai, af, ak, aok := jNum(a)
	bi, bf, bk, bok := jNum(b)
	if aok && bok {
		if ak == 1 && bk == 1 {
			return ai == bi
		}
		x, y := af, bf
		if ak == 1 {
			x = float64(ai)
		}
		if bk == 1 {
			y = float64(bi)
		}
		return x == y
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		return ok && seqEqual(x, y)
	case tuple:
		y, ok := b.(tuple)
		return ok && seqEqual(x, y)
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !pyEqual(v, w) {
				return false
			}
		}
		return true
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	}
	return false
}

func seqEqual(x, y []any) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if !pyEqual(x[i], y[i]) {
			return false
		}
	}
	return true
}

// pyCompare orders a and b as Python's < does: -1, 0, 1, or a TypeError.
func pyCompare(op string, a, b any) (int, error) {
	if u, ok := a.(*jUndefined); ok {
		return 0, u.err()
	}
	if u, ok := b.(*jUndefined); ok {
		return 0, u.err()
	}
	ai, af, ak, aok := jNum(a)
	bi, bf, bk, bok := jNum(b)
	if aok && bok {
		if ak == 1 && bk == 1 {
			return cmp3(ai < bi, ai > bi), nil
		}
		x, y := af, bf
		if ak == 1 {
			x = float64(ai)
		}
		if bk == 1 {
			y = float64(bi)
		}
		return cmp3(x < y, x > y), nil
	}
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), nil
		}
	case time.Time:
		if y, ok := b.(time.Time); ok {
			return cmp3(x.Before(y), x.After(y)), nil
		}
	case []any:
		if y, ok := b.([]any); ok {
			return seqCompare(op, x, y)
		}
	case tuple:
		if y, ok := b.(tuple); ok {
			return seqCompare(op, x, y)
		}
	}
	return 0, jErr("TypeError", "'%s' not supported between instances of '%s' and '%s'", op, jTypeName(a), jTypeName(b))
}

func cmp3(lt, gt bool) int {
	switch {
	case lt:
		return -1
	case gt:
		return 1
	}
	return 0
}

func seqCompare(op string, x, y []any) (int, error) {
	for i := 0; i < len(x) && i < len(y); i++ {
		if pyEqual(x[i], y[i]) {
			continue
		}
		return pyCompare(op, x[i], y[i])
	}
	return cmp3(len(x) < len(y), len(x) > len(y)), nil
}

func jCompareOp(op string, l, r any) (bool, error) {
	switch op {
	case "==":
		return jEqual(l, r), nil
	case "!=":
		return !jEqual(l, r), nil
	case "in", "notin":
		ok, err := jContains(r, l)
		if err != nil {
			return false, err
		}
		return ok == (op == "in"), nil
	}
	c, err := pyCompare(op, l, r)
	if err != nil {
		return false, err
	}
	switch op {
	case "<":
		return c < 0, nil
	case "<=":
		return c <= 0, nil
	case ">":
		return c > 0, nil
	}
	return c >= 0, nil
}

// jContains is Python's "item in container".
func jContains(container, item any) (bool, error) {
	switch c := container.(type) {
	case string:
		s, ok := item.(string)
		if !ok {
			if u, isU := item.(*jUndefined); isU {
				return false, u.err()
			}
			return false, jErr("TypeError", "'in <string>' requires string as left operand, not %s", jTypeName(item))
		}
		return strings.Contains(c, s), nil
	case map[string]any:
		s, ok := item.(string)
		if !ok {
			return false, nil
		}
		_, has := c[s]
		return has, nil
	case *jUndefined:
		return false, nil
	}
	items, err := jIter(container)
	if err != nil {
		return false, jErr("TypeError", "argument of type '%s' is not iterable", jTypeName(container))
	}
	for _, it := range items {
		if jEqual(it, item) {
			return true, nil
		}
	}
	return false, nil
}

func jGetAttr(v any, name string) (any, error) {
	switch x := v.(type) {
	case *jUndefined:
		return nil, x.err()
	case map[string]any:
		if jHasMethod(v, name) {
			return &jMethod{v, name}, nil
		}
		if e, ok := x[name]; ok {
			return e, nil
		}
	case *jLoop:
		n := len(x.items)
		switch name {
		case "index":
			return int64(x.i + 1), nil
		case "index0":
			return int64(x.i), nil
		case "revindex":
			return int64(n - x.i), nil
		case "revindex0":
			return int64(n - x.i - 1), nil
		case "first":
			return x.i == 0, nil
		case "last":
			return x.i == n-1, nil
		case "length":
			return int64(n), nil
		case "depth":
			return int64(1), nil
		case "depth0":
			return int64(0), nil
		case "previtem":
			if x.i > 0 {
				return x.items[x.i-1], nil
			}
			return &jUndefined{hint: "there is no previous item"}, nil
		case "nextitem":
			if x.i < n-1 {
				return x.items[x.i+1], nil
			}
			return &jUndefined{hint: "there is no next item"}, nil
		case "cycle":
			i := x.i
			return jFunc(func(pos []any, kw map[string]any) (any, error) {
				if len(pos) == 0 {
					return nil, jErr("TypeError", "no items for cycling given")
				}
				return pos[i%len(pos)], nil
			}), nil
		}
	case time.Time:
		switch name {
		case "year":
			return int64(x.Year()), nil
		case "month":
			return int64(x.Month()), nil
		case "day":
			return int64(x.Day()), nil
		case "hour":
			return int64(x.Hour()), nil
		case "minute":
			return int64(x.Minute()), nil
		case "second":
			return int64(x.Second()), nil
		case "microsecond":
			return int64(x.Nanosecond() / 1000), nil
		}
		if jHasMethod(v, name) {
			return &jMethod{v, name}, nil
		}
	default:
		if jHasMethod(v, name) {
			return &jMethod{v, name}, nil
		}
	}
	return &jUndefined{name: name, hint: fmt.Sprintf("'%s' has no attribute %s", jObjRepr(v), pyQuote(name))}, nil
}

func jGetItem(v, k any) (any, error) {
	switch x := v.(type) {
	case *jUndefined:
		return nil, x.err()
	case map[string]any:
		if s, ok := k.(string); ok {
			if e, ok := x[s]; ok {
				return e, nil
			}
		}
	case []any, tuple, string:
		if i, _, kind, ok := jNum(k); ok && kind == 1 {
			items, _ := jIter(x)
			if s, isStr := x.(string); isStr {
				items, _ = jIter(s)
			}
			n := int64(len(items))
			if i < 0 {
				i += n
			}
			if i >= 0 && i < n {
				return items[i], nil
			}
			return &jUndefined{hint: fmt.Sprintf("'%s' has no element %s", jObjRepr(v), pyRepr(k))}, nil
		}
	}
	if s, ok := k.(string); ok {
		return jGetAttr(v, s)
	}
	return &jUndefined{hint: fmt.Sprintf("'%s' has no element %s", jObjRepr(v), pyRepr(k))}, nil
}

func jSlice(v, lo, hi, step any) (any, error) {
	if u, ok := v.(*jUndefined); ok {
		return nil, u.err()
	}
	items, err := jIter(v)
	if err != nil {
		return nil, jErr("TypeError", "'%s' object is not subscriptable", jTypeName(v))
	}
	if _, isMap := v.(map[string]any); isMap {
		return nil, jErr("TypeError", "unhashable type: 'slice'")
	}
	n := int64(len(items))
	st := int64(1)
	if step != nil {
		s, _, k, ok := jNum(step)
		if !ok || k != 1 {
			return nil, jErr("TypeError", "slice indices must be integers or None or have an __index__ method")
		}
		if s == 0 {
			return nil, jErr("ValueError", "slice step cannot be zero")
		}
		st = s
	}
	idx := func(x any, def int64) (int64, error) {
		if x == nil {
			return def, nil
		}
		i, _, k, ok := jNum(x)
		if !ok || k != 1 {
			return 0, jErr("TypeError", "slice indices must be integers or None or have an __index__ method")
		}
		if i < 0 {
			i += n
			if i < 0 {
				if st < 0 {
					return -1, nil
				}
				return 0, nil
			}
		}
		if i >= n {
			if st < 0 {
				return n - 1, nil
			}
			return n, nil
		}
		return i, nil
	}
	var start, stop int64
	if st > 0 {
		if start, err = idx(lo, 0); err != nil {
			return nil, err
		}
		if stop, err = idx(hi, n); err != nil {
			return nil, err
		}
	} else {
		if start, err = idx(lo, n-1); err != nil {
			return nil, err
		}
		if stop, err = idx(hi, -1); err != nil {
			return nil, err
		}
		if hi == nil {
			stop = -1
		}
	}
	var out []any
	for i := start; (st > 0 && i < stop) || (st < 0 && i > stop); i += st {
		out = append(out, items[i])
	}
	switch v.(type) {
	case string:
		var b strings.Builder
		for _, c := range out {
			b.WriteString(c.(string))
		}
		return b.String(), nil
	case tuple:
		return tuple(out), nil
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

func jCallValue(fn any, pos []any, kw map[string]any) (any, error) {
	switch f := fn.(type) {
	case jFunc:
		return f(pos, kw)
	case *jMethod:
		return jCallMethod(f, pos, kw)
	case *jUndefined:
		return nil, f.err()
	}
	return nil, jErr("TypeError", "'%s' object is not callable", jTypeName(fn))
}

// jSortedItems is a dict's (key, value) pairs in key order.
func jSortedItems(m map[string]any) []any {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]any, len(keys))
	for i, k := range keys {
		out[i] = tuple{k, m[k]}
	}
	return out
}
