package engine

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

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
		return pyTimeStr(x)
	}
	return pyRepr(v)
}

// Python has three kinds of time values a catalog meets: dates
// (datetime.date, from a YAML date), naive datetimes and timezone-aware
// ones (pandas Timestamps, YAML timestamps). They are time.Time here,
// told apart by their Location.
var (
	dateLoc  = time.FixedZone("date", 0)
	naiveLoc = time.FixedZone("naive", 0)
)

func pyDate(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, dateLoc) }

// naive drops t's zone, keeping its wall clock.
func naive(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), naiveLoc)
}

func isDate(t time.Time) bool  { return t.Location() == dateLoc }
func tzAware(t time.Time) bool { l := t.Location(); return l != dateLoc && l != naiveLoc }

// pyTimeStr is str() of a date, a datetime or a pandas Timestamp.
func pyTimeStr(t time.Time) string {
	if isDate(t) {
		return t.Format("2006-01-02")
	}
	s := t.Format("2006-01-02 15:04:05")
	if ns := t.Nanosecond(); ns != 0 {
		if ns%1000 == 0 {
			s += fmt.Sprintf(".%06d", ns/1000)
		} else {
			s += fmt.Sprintf(".%09d", ns)
		}
	}
	if tzAware(t) {
		s += t.Format("-07:00")
	}
	return s
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
	case string:
		return pyQuote(x)
	case time.Time:
		if isDate(x) {
			return fmt.Sprintf("datetime.date(%d, %d, %d)", x.Year(), int(x.Month()), x.Day())
		}
		return "Timestamp('" + pyStr(x) + "')"
	case []any:
		return "[" + joinRepr(x) + "]"
	case tuple:
		if len(x) == 1 {
			return "(" + pyRepr(x[0]) + ",)"
		}
		return "(" + joinRepr(x) + ")"
	case map[string]any:
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
