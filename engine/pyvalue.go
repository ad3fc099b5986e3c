package engine

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Intake renders parameter values into templates with Python's str(), and
// catalog authors rely on its spelling ("1.0", "True", "['a', 'b']"). These
// named types carry that spelling through pongo2, which consults
// fmt.Stringer before its own formatting, while keeping the reflect kind so
// that comparisons and loops in templates still work.
type (
	pyFloat float64
	pyList  []any
	pyTuple []any
	pyDict  map[string]any
	pyTime  time.Time
)

func (f pyFloat) String() string { return pyFloatRepr(float64(f)) }
func (l pyList) String() string  { return pyRepr([]any(l)) }
func (t pyTuple) String() string { return pyRepr(t) }
func (d pyDict) String() string  { return pyRepr(map[string]any(d)) }
func (t pyTime) String() string  { return pyStr(time.Time(t)) }

// toTemplate wraps a typed parameter value for the template context.
func toTemplate(v any) any {
	switch x := v.(type) {
	case float64:
		return pyFloat(x)
	case []any:
		out := make(pyList, len(x))
		for i, e := range x {
			out[i] = toTemplate(e)
		}
		return out
	case tuple:
		out := make(pyTuple, len(x))
		for i, e := range x {
			out[i] = toTemplate(e)
		}
		return out
	case map[string]any:
		out := make(pyDict, len(x))
		for k, e := range x {
			out[k] = toTemplate(e)
		}
		return out
	case time.Time:
		return pyTime(x)
	}
	return v
}

// tuple is the Go form of a Python tuple parameter value.
type tuple []any

// pyStr is Python's str(v).
func pyStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return x
	case time.Time:
		if x.Nanosecond() != 0 {
			return x.Format("2006-01-02 15:04:05.999999999")
		}
		return x.Format("2006-01-02 15:04:05")
	}
	return pyRepr(v)
}

// pyRepr is Python's repr(v) for the value kinds a catalog can hold.
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return pyFloatRepr(x)
	case pyFloat:
		return pyFloatRepr(float64(x))
	case string:
		return pyQuote(x)
	case time.Time:
		return "Timestamp('" + pyStr(x) + "')"
	case pyTime:
		return "Timestamp('" + pyStr(time.Time(x)) + "')"
	case []any:
		return "[" + joinRepr(x) + "]"
	case pyList:
		return "[" + joinRepr(x) + "]"
	case tuple:
		if len(x) == 1 {
			return "(" + pyRepr(x[0]) + ",)"
		}
		return "(" + joinRepr(x) + ")"
	case pyTuple:
		return pyRepr(tuple(x))
	case map[string]any:
		return dictRepr(x)
	case pyDict:
		return dictRepr(x)
	}
	return strings.TrimSpace(strings.ReplaceAll(stringify(v), "\n", " "))
}

func joinRepr(xs []any) string {
	parts := make([]string, len(xs))
	for i, e := range xs {
		parts[i] = pyRepr(e)
	}
	return strings.Join(parts, ", ")
}

func dictRepr(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = pyQuote(k) + ": " + pyRepr(m[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// pyQuote quotes like Python's repr of a str: single quotes unless the
// string holds a single quote and no double quote.
func pyQuote(s string) string {
	q := byte('\'')
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(q):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x` + strconv.FormatInt(int64(r)|0x100, 16)[1:])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// pyFloatRepr is Python's repr of a float: shortest round-trip digits, a
// ".0" on integral values, exponent form outside [1e-4, 1e16).
func pyFloatRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	a := math.Abs(f)
	if a != 0 && (a < 1e-4 || a >= 1e16) {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		// Go writes e+06 / e-05; Python writes e+06 / e-05 too, but
		// drops nothing: both use at least two exponent digits.
		return s
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}
