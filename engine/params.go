package engine

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ParamTypes are the parameter types Intake knows (its COERCION_RULES).
var ParamTypes = []string{"bool", "datetime", "dict", "float", "tuple", "mlist", "int", "list", "str", "unicode", "other"}

// Param is a user parameter as declared in a catalog.
type Param struct {
	Name        string
	Description string
	Type        string // may carry an inner type: "list[int]"
	// Default is the declared default as written (nil when absent).
	Default any
	// userSet marks a default that came from a user (a path, --param):
	// such a value is never expanded for env()/shell(), and it is held to
	// the path-safety rule (pathsafety.go).
	userSet  bool
	Min, Max any
	Allowed  []any
	File     string
	Line     int
}

// ParamError is a value that a parameter refuses. Its message uses
// Intake's own wording.
type ParamError struct {
	Param string
	Msg   string
}

func (e *ParamError) Error() string { return e.Msg }

func (p *Param) baseType() (string, string) {
	if i := strings.IndexByte(p.Type, '['); i >= 0 {
		return p.Type[:i], strings.TrimSuffix(p.Type[i+1:], "]")
	}
	return p.Type, ""
}

func (p *Param) errorf(format string, a ...any) error {
	return &ParamError{p.Name, p.Name + ": " + fmt.Sprintf(format, a...)}
}

// Coerce converts v to the parameter's type as Intake 0.7's coerce does
// (see coerce), with the bool spellings the README lists.
func (p *Param) Coerce(v any) (any, error) {
	base, inner := p.baseType()
	out, err := coerce(base, inner, v)
	if err != nil {
		return nil, p.errorf("%v", err)
	}
	return out, nil
}

// Validate coerces v and checks min, max and allowed, as Intake's
// UserParameter.validate does, in its words.
func (p *Param) Validate(v any) (any, error) {
	val, err := p.Coerce(v)
	if err != nil {
		return nil, err
	}
	if p.Type == "mlist" {
		items, err := jIter(val)
		if err != nil || val == nil {
			return nil, p.errorf("'%s' object is not iterable", jTypeName(val))
		}
		if p.Allowed == nil {
			return nil, p.errorf("argument of type 'NoneType' is not iterable")
		}
		for _, it := range items {
			if !contains(p.Allowed, it) {
				return nil, &ParamError{p.Name, fmt.Sprintf("Item %s not in allowed list", pyStr(it))}
			}
		}
		return val, nil
	}
	check := func(bound any, op, word string, bad func(int) bool) error {
		if bound == nil {
			return nil
		}
		b := bound
		// Intake coerces min and max when they are truthy
		if jTruth(bound) {
			if c, err := p.Coerce(bound); err == nil {
				b = c
			}
		}
		c, err := pyCompare(op, val, b)
		if err != nil {
			return p.errorf("%v", err)
		}
		if bad(c) {
			return &ParamError{p.Name, fmt.Sprintf("%s=%s is %s %s", p.Name, pyStr(val), word, pyStr(b))}
		}
		return nil
	}
	if err := check(p.Min, "<", "less than", func(c int) bool { return c < 0 }); err != nil {
		return nil, err
	}
	if err := check(p.Max, ">", "greater than", func(c int) bool { return c > 0 }); err != nil {
		return nil, err
	}
	if p.Allowed != nil {
		allowed := p.allowedValues()
		if !contains(allowed, val) {
			names := make([]string, len(allowed))
			for i, a := range allowed {
				names[i] = pyStr(a)
			}
			return nil, &ParamError{p.Name, fmt.Sprintf("%s=%s is not one of the allowed values: %s", p.Name, pyStr(val), strings.Join(names, ","))}
		}
	}
	return val, nil
}

// allowedValues are the allowed values coerced to the parameter's type
// (as Intake does when it makes the parameter; one that does not coerce
// is kept as written).
func (p *Param) allowedValues() []any {
	out := make([]any, len(p.Allowed))
	for i, a := range p.Allowed {
		c, err := p.Coerce(a)
		if err != nil {
			c = a
		}
		out[i] = c
	}
	return out
}

// allows reports whether v is one of the parameter's allowed values.
func (p *Param) allows(v any) bool {
	return p.Allowed != nil && contains(p.allowedValues(), v)
}

// FromPath converts a value written in a path: it is a string, never
// expanded, coerced as Intake 0.7 coerces a string, except for the
// spellings SPEC §3 adds: bool words, comma-separated lists, YAML flow
// lists and mappings.
func (p *Param) FromPath(s string) (any, error) {
	base, inner := p.baseType()
	switch base {
	case "bool":
		b, ok := parseBoolWord(s)
		if !ok {
			return nil, &ParamError{p.Name, fmt.Sprintf("%s=%s is not a bool (use true/false/1/0/yes/no)", p.Name, s)}
		}
		return p.Validate(b)
	case "list", "mlist", "tuple":
		t := strings.TrimSpace(s)
		if t == "" {
			if base == "tuple" {
				return p.Validate(tuple{})
			}
			return p.Validate([]any{})
		}
		if strings.HasPrefix(t, "[") || strings.HasPrefix(t, "(") {
			if lit, err := parseLiteral(t); err == nil {
				switch lit.(type) {
				case []any, tuple:
					// the string itself, so that Intake's coercion
					// (and its inner types) apply exactly
					return p.Validate(t)
				}
			}
			if strings.HasPrefix(t, "[") {
				var y any
				if err := yaml.Unmarshal([]byte(t), &y); err == nil {
					if l, ok := normYAML(y).([]any); ok {
						return p.validateItems(base, inner, l)
					}
				}
			}
			return nil, p.errorf("Failed to coerce string to %s: %s", base, pyQuote(s))
		}
		var items []any
		for _, part := range strings.Split(s, ",") {
			items = append(items, literalOrString(strings.TrimSpace(part)))
		}
		return p.validateItems(base, inner, items)
	case "dict":
		t := strings.TrimSpace(s)
		if lit, err := parseLiteral(t); err == nil {
			if _, ok := lit.(map[string]any); ok {
				return p.Validate(t)
			}
		}
		var y any
		if strings.HasPrefix(t, "{") && yaml.Unmarshal([]byte(t), &y) == nil {
			if m, ok := normYAML(y).(map[string]any); ok {
				return p.Validate(m)
			}
		}
	}
	return p.Validate(s)
}

// validateItems validates a list made from a path, its items converted
// to the inner type (list[int]) first.
func (p *Param) validateItems(base, inner string, items []any) (any, error) {
	if items == nil {
		items = []any{}
	}
	if inner != "" {
		for i := range items {
			c, err := coerceRule(inner, items[i])
			if err != nil {
				return nil, p.errorf("%v", err)
			}
			items[i] = c
		}
	}
	if base == "tuple" {
		return p.Validate(tuple(items))
	}
	return p.Validate(items)
}

// normYAML makes yaml.v3's decoded values the engine's kinds.
func normYAML(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case []any:
		for i := range x {
			x[i] = normYAML(x[i])
		}
		return x
	case map[string]any:
		for k := range x {
			x[k] = normYAML(x[k])
		}
		return x
	}
	return v
}

func literalOrString(s string) any {
	if v, err := parseLiteral(s); err == nil {
		switch v.(type) {
		case string, int64, float64, bool:
			return v
		}
	}
	return s
}

func parseBoolWord(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes":
		return true, true
	case "false", "0", "no":
		return false, true
	}
	return false, false
}

// coerce is Intake 0.7's utils.coerce:
//
//   - a value already of the type is kept as it is (its items too: a
//     list given for list[int] is not converted);
//   - mlist: a tuple or dict becomes a list, a string is read as a Python
//     literal and made a list;
//   - None becomes the type's empty value (False, 0, 0.0, ”, [], (), {},
//     the epoch);
//   - a string for any type but str and datetime is first read as a
//     Python literal ("[1, 2]", "(10, 20)", "{'a': 1}", "1.5", "True");
//     when it is not one, it is used as the string. (0.7 lets a
//     SyntaxError from that reading escape, e.g. for "05"; intakefs uses
//     the string, as 0.6.6 does.)
//   - then the type's constructor applies, as Python's bool(), int(),
//     float(), str(), list(), tuple(), dict() and pandas.to_datetime()
//     do, and the inner type to each item.
//
// One deliberate difference: bool of a string that is not a literal
// accepts true/false/yes/no (any case) and refuses anything else, where
// Python's bool() makes any non-empty string True.
func coerce(dtype, inner string, v any) (any, error) {
	if dtype == "" {
		return v, nil
	}
	if i, ok := v.(int); ok {
		v = int64(i)
	}
	if pyTypeName(v) == dtype {
		return v, nil
	}
	if dtype == "mlist" {
		switch x := v.(type) {
		case tuple:
			return append([]any{}, x...), nil
		case map[string]any:
			return jIter(x)
		case string:
			lit, err := parseLiteral(x)
			if err != nil {
				return nil, fmt.Errorf("Failed to coerce string to list")
			}
			items, err := jIter(lit)
			if err != nil {
				return nil, err
			}
			return append([]any{}, items...), nil
		}
		return v, nil
	}
	if v == nil {
		return emptyValue(dtype)
	}
	if s, ok := v.(string); ok && dtype != "str" && dtype != "unicode" && dtype != "datetime" {
		if lit, err := parseLiteral(s); err == nil {
			v = lit
		}
	}
	out, err := coerceRule(dtype, v)
	if err != nil || inner == "" {
		return out, err
	}
	switch x := out.(type) {
	case []any:
		for i := range x {
			if x[i], err = coerceRule(inner, x[i]); err != nil {
				return nil, err
			}
		}
	case tuple:
		for i := range x {
			if x[i], err = coerceRule(inner, x[i]); err != nil {
				return nil, err
			}
		}
	case map[string]any:
		for k := range x {
			if x[k], err = coerceRule(inner, x[k]); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// emptyValue is what a type's constructor gives with no argument.
func emptyValue(dtype string) (any, error) {
	switch dtype {
	case "str", "unicode":
		return "", nil
	case "int":
		return int64(0), nil
	case "float":
		return 0.0, nil
	case "bool":
		return false, nil
	case "list":
		return []any{}, nil
	case "tuple":
		return tuple{}, nil
	case "dict":
		return map[string]any{}, nil
	case "datetime":
		return time.Unix(0, 0).In(naiveLoc), nil
	case "other":
		// Intake: "<lambda>() missing 1 required positional argument"
		return nil, nil
	}
	return nil, fmt.Errorf("%s", pyQuote(dtype))
}

// coerceRule applies one of COERCION_RULES to a value (no literal
// reading of strings: Intake applies inner types this way).
func coerceRule(dtype string, v any) (any, error) {
	if i, ok := v.(int); ok {
		v = int64(i)
	}
	switch dtype {
	case "str", "unicode":
		return pyStr(v), nil
	case "other":
		return v, nil
	case "bool":
		if s, ok := v.(string); ok {
			b, ok := parseBoolWord(s)
			if !ok {
				return nil, fmt.Errorf("%s is not a bool (use true/false/1/0/yes/no)", pyQuote(s))
			}
			return b, nil
		}
		return jTruth(v), nil
	case "int":
		switch x := v.(type) {
		case int64:
			return x, nil
		case bool:
			return b2i(x), nil
		case float64:
			switch {
			case math.IsInf(x, 0):
				return nil, fmt.Errorf("cannot convert float infinity to integer")
			case math.IsNaN(x):
				return nil, fmt.Errorf("cannot convert float NaN to integer")
			case math.Abs(x) >= 9.223372036854775e18:
				return nil, fmt.Errorf("%s is too large for intakefs (64-bit integers)", pyFloatRepr(x))
			}
			return int64(x), nil
		case string:
			return pyIntString(x)
		}
		return nil, fmt.Errorf("int() argument must be a string, a bytes-like object or a real number, not '%s'", jTypeName(v))
	case "float":
		switch x := v.(type) {
		case int64:
			return float64(x), nil
		case bool:
			return float64(b2i(x)), nil
		case float64:
			return x, nil
		case string:
			return parsePyFloat(x)
		}
		return nil, fmt.Errorf("float() argument must be a string or a real number, not '%s'", jTypeName(v))
	case "list", "tuple":
		var items []any
		switch x := v.(type) {
		case []any, tuple, string, map[string]any:
			it, _ := jIter(x)
			items = append([]any{}, it...)
		default:
			return nil, fmt.Errorf("'%s' object is not iterable", jTypeName(v))
		}
		if dtype == "tuple" {
			return tuple(items), nil
		}
		return items, nil
	case "dict":
		switch x := v.(type) {
		case map[string]any:
			out := make(map[string]any, len(x))
			for k, e := range x {
				out[k] = e
			}
			return out, nil
		case []any, tuple, string:
			items, _ := jIter(x)
			out := map[string]any{}
			for i, it := range items {
				kv, err := jIter(it)
				if err != nil {
					return nil, fmt.Errorf("cannot convert dictionary update sequence element #%d to a sequence", i)
				}
				if len(kv) != 2 {
					return nil, fmt.Errorf("dictionary update sequence element #%d has length %d; 2 is required", i, len(kv))
				}
				out[pyStr(kv[0])] = kv[1]
			}
			return out, nil
		}
		return nil, fmt.Errorf("'%s' object is not iterable", jTypeName(v))
	case "datetime":
		return toDatetime(v)
	}
	return nil, fmt.Errorf("%s", pyQuote(dtype))
}

// pyIntString is Python's int() of a string.
func pyIntString(s string) (any, error) {
	bad := fmt.Errorf("invalid literal for int() with base 10: %s", pyQuote(s))
	t := strings.TrimSpace(s)
	neg := false
	if strings.HasPrefix(t, "-") || strings.HasPrefix(t, "+") {
		neg = t[0] == '-'
		t = t[1:]
	}
	if t == "" || t[0] == '_' || t[len(t)-1] == '_' || strings.Contains(t, "__") {
		return nil, bad
	}
	t = strings.ReplaceAll(t, "_", "")
	for _, c := range t {
		if c < '0' || c > '9' {
			return nil, bad
		}
	}
	if neg {
		t = "-" + t
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s is too large for intakefs (64-bit integers)", s)
	}
	return n, nil
}

// now is replaceable so that tests of "now"/"today" are deterministic.
var now = time.Now

// toDatetime is Intake's coerce_datetime: a false value is the epoch, a
// {"__datetime__": ..., "as_str": s} mapping is s, and the rest goes to
// pandas.to_datetime: integers and floats count nanoseconds since the
// epoch, strings are parsed (ISO 8601 and the common other forms).
func toDatetime(v any) (any, error) {
	if !jTruth(v) {
		v = int64(0)
	}
	switch x := v.(type) {
	case time.Time:
		if isDate(x) {
			return time.Date(x.Year(), x.Month(), x.Day(), 0, 0, 0, 0, naiveLoc), nil
		}
		return x, nil
	case int64:
		return time.Unix(0, x).In(naiveLoc), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("cannot convert %s to datetime", pyFloatRepr(x))
		}
		return time.Unix(0, int64(x)).In(naiveLoc), nil
	case bool:
		return nil, fmt.Errorf("dtype bool cannot be converted to datetime64[ns]")
	case map[string]any:
		if _, ok := x["__datetime__"]; ok {
			return toDatetime(x["as_str"])
		}
	case string:
		return parseDatetime(x)
	}
	return nil, fmt.Errorf("cannot convert %s to datetime", pyRepr(v))
}

var (
	reISODate = regexp.MustCompile(`^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?(?:[Tt ]+(\d{1,2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9})\d*)?)?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$`)
	reCompact = regexp.MustCompile(`^(\d{4})(\d{2})(\d{2})(?:[Tt ]?(\d{2})(\d{2})(\d{2})?)?(Z)?$`)
	reSlashes = regexp.MustCompile(`^(\d{1,4})/(\d{1,2})/(\d{1,4})(?:[Tt ]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$`)
	reWords   = regexp.MustCompile(`[A-Za-z]+|\d+`)
)

var monthNames = map[string]time.Month{
	"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
	"january": 1, "february": 2, "march": 3, "april": 4, "june": 6, "july": 7, "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
}

// parseDatetime reads a date string as pandas.to_datetime does for the
// forms catalogs use, with pandas's error messages.
func parseDatetime(s string) (any, error) {
	t := strings.TrimSpace(s)
	switch strings.ToLower(t) {
	case "now":
		return naive(now().UTC()), nil
	case "today":
		return naive(now()), nil
	}
	unknown := fmt.Errorf("Unknown string format: %s present at position 0", s)
	atoi := func(x string) int {
		n, _ := strconv.Atoi(x)
		return n
	}
	build := func(y, mo, d, h, mi, sec int, frac, zone string) (any, error) {
		if mo < 1 || mo > 12 {
			return nil, fmt.Errorf("month must be in 1..12: %s present at position 0", s)
		}
		if d < 1 || d > daysIn(time.Month(mo), y) {
			return nil, fmt.Errorf("day is out of range for month: %s present at position 0", s)
		}
		if h > 23 || mi > 59 || sec > 59 {
			return nil, fmt.Errorf("hour must be in 0..23: %s present at position 0", s)
		}
		ns := 0
		if frac != "" {
			ns = atoi((frac + "000000000")[:9])
		}
		loc := naiveLoc
		switch {
		case zone == "Z":
			loc = time.UTC
		case zone != "":
			z := strings.ReplaceAll(zone[1:], ":", "")
			off := atoi(z[:2]) * 3600
			if len(z) >= 4 {
				off += atoi(z[2:4]) * 60
			}
			if zone[0] == '-' {
				off = -off
			}
			loc = time.FixedZone("", off)
		}
		return time.Date(y, time.Month(mo), d, h, mi, sec, ns, loc), nil
	}
	if m := reCompact.FindStringSubmatch(t); m != nil {
		return build(atoi(m[1]), atoi(m[2]), atoi(m[3]), atoi(m[4]), atoi(m[5]), atoi(m[6]), "", m[7])
	}
	if isDigits(t) {
		if len(t) == 4 {
			return build(atoi(t), 1, 1, 0, 0, 0, "", "")
		}
		return nil, fmt.Errorf("Given date string %s not likely a datetime present at position 0", s)
	}
	if m := reISODate.FindStringSubmatch(t); m != nil {
		mo, d := 1, 1
		if m[2] != "" {
			mo = atoi(m[2])
		}
		if m[3] != "" {
			d = atoi(m[3])
		}
		return build(atoi(m[1]), mo, d, atoi(m[4]), atoi(m[5]), atoi(m[6]), m[7], m[8])
	}
	if m := reSlashes.FindStringSubmatch(t); m != nil {
		a, b, c := atoi(m[1]), atoi(m[2]), atoi(m[3])
		if len(m[1]) == 4 {
			return build(a, b, c, atoi(m[4]), atoi(m[5]), atoi(m[6]), "", "")
		}
		if len(m[3]) == 4 {
			// month first, as dateutil reads it
			return build(c, a, b, atoi(m[4]), atoi(m[5]), atoi(m[6]), "", "")
		}
		return nil, unknown
	}
	// "Jan 2 2020", "2 January 2020", "January 2, 2020"
	words := reWords.FindAllString(t, -1)
	if len(words) == 3 && strings.Trim(t, "0123456789AaBbCcDdEeFfGgHhIiJjKkLlMmNnOoPpQqRrSsTtUuVvWwXxYyZz ,.") == "" {
		var mo time.Month
		var nums []string
		for _, w := range words {
			if m, ok := monthNames[strings.ToLower(w)]; ok && mo == 0 {
				mo = m
			} else if isDigits(w) {
				nums = append(nums, w)
			}
		}
		if mo != 0 && len(nums) == 2 {
			y, d := nums[1], nums[0]
			if len(nums[0]) == 4 {
				y, d = nums[0], nums[1]
			}
			return build(atoi(y), int(mo), atoi(d), 0, 0, 0, "", "")
		}
	}
	return nil, unknown
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func daysIn(m time.Month, y int) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// pyTypeName is type(v).__name__ for the values a catalog holds.
func pyTypeName(v any) string {
	switch x := v.(type) {
	case time.Time:
		if isDate(x) {
			return "date"
		}
		return "datetime"
	case nil:
		return "NoneType"
	}
	return jTypeName(v)
}

func contains(list []any, v any) bool {
	for _, a := range list {
		if pyEqual(a, v) {
			return true
		}
	}
	return false
}

// equalValues compares as Python's == does for catalog values (1 == 1.0).
func equalValues(a, b any) bool { return pyEqual(a, b) }
