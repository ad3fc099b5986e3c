package engine

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
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
	// such a value is never expanded for env()/shell().
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

// Coerce converts v to the parameter's type the way Intake 0.7 does, with
// the documented intakefs differences for strings (see README).
func (p *Param) Coerce(v any) (any, error) {
	base, inner := p.baseType()
	out, err := coerce(base, v)
	if err != nil {
		return nil, &ParamError{p.Name, fmt.Sprintf("%s: %v", p.Name, err)}
	}
	if inner != "" {
		conv := func(x any) (any, error) {
			y, err := coerce(inner, x)
			if err != nil {
				return nil, &ParamError{p.Name, fmt.Sprintf("%s: %v", p.Name, err)}
			}
			return y, nil
		}
		switch x := out.(type) {
		case []any:
			for i := range x {
				if x[i], err = conv(x[i]); err != nil {
					return nil, err
				}
			}
		case tuple:
			for i := range x {
				if x[i], err = conv(x[i]); err != nil {
					return nil, err
				}
			}
		case map[string]any:
			for k := range x {
				if x[k], err = conv(x[k]); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

// Validate coerces v and checks min, max and allowed, as Intake's
// UserParameter.validate does.
func (p *Param) Validate(v any) (any, error) {
	val, err := p.Coerce(v)
	if err != nil {
		return nil, err
	}
	if p.Type == "mlist" {
		items, _ := val.([]any)
		for _, it := range items {
			if !contains(p.Allowed, it) {
				return nil, &ParamError{p.Name, fmt.Sprintf("Item %s not in allowed list", pyStr(it))}
			}
		}
		return val, nil
	}
	if p.Min != nil {
		min, err := p.Coerce(p.Min)
		if err == nil && less(val, min) {
			return nil, &ParamError{p.Name, fmt.Sprintf("%s=%s is less than %s", p.Name, pyStr(val), pyStr(min))}
		}
	}
	if p.Max != nil {
		max, err := p.Coerce(p.Max)
		if err == nil && less(max, val) {
			return nil, &ParamError{p.Name, fmt.Sprintf("%s=%s is greater than %s", p.Name, pyStr(val), pyStr(max))}
		}
	}
	if p.Allowed != nil {
		allowed := make([]any, 0, len(p.Allowed))
		names := make([]string, 0, len(p.Allowed))
		for _, a := range p.Allowed {
			c, err := p.Coerce(a)
			if err != nil {
				c = a
			}
			allowed = append(allowed, c)
			names = append(names, pyStr(c))
		}
		if !contains(allowed, val) {
			return nil, &ParamError{p.Name, fmt.Sprintf("%s=%s is not one of the allowed values: %s", p.Name, pyStr(val), strings.Join(names, ","))}
		}
	}
	return val, nil
}

// FromPath converts a value written in a path: strings only, never
// expanded, with the bool and list spellings SPEC §3 gives.
func (p *Param) FromPath(s string) (any, error) {
	base, _ := p.baseType()
	switch base {
	case "bool":
		b, ok := parseBoolWord(s)
		if !ok {
			return nil, &ParamError{p.Name, fmt.Sprintf("%s=%s is not a bool (use true/false/1/0/yes/no)", p.Name, s)}
		}
		return b, nil
	case "list", "mlist", "tuple":
		t := strings.TrimSpace(s)
		if strings.HasPrefix(t, "[") || strings.HasPrefix(t, "(") {
			return p.Validate(t)
		}
		var items []any
		if t != "" {
			for _, part := range strings.Split(s, ",") {
				items = append(items, literalOrString(strings.TrimSpace(part)))
			}
		}
		if items == nil {
			items = []any{}
		}
		return p.Validate(items)
	}
	return p.Validate(s)
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

func coerce(dtype string, v any) (any, error) {
	if dtype == "" || dtype == "other" {
		return v, nil
	}
	if v == nil {
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
			return time.Unix(0, 0).UTC(), nil
		case "mlist":
			return nil, nil
		}
	}
	if i, ok := v.(int); ok {
		v = int64(i)
	}
	switch dtype {
	case "str", "unicode":
		return pyStr(v), nil
	case "int":
		switch x := v.(type) {
		case int64:
			return x, nil
		case float64:
			if math.IsInf(x, 0) || math.IsNaN(x) {
				return nil, fmt.Errorf("cannot convert float %s to integer", pyFloatRepr(x))
			}
			return int64(x), nil
		case bool:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		case string:
			t := strings.ReplaceAll(strings.TrimSpace(x), "_", "")
			n, err := strconv.ParseInt(t, 10, 64)
			if err != nil || t == "" {
				return nil, fmt.Errorf("invalid literal for int() with base 10: %s", pyQuote(x))
			}
			return n, nil
		}
	case "float":
		switch x := v.(type) {
		case int64:
			return float64(x), nil
		case float64:
			return x, nil
		case bool:
			if x {
				return 1.0, nil
			}
			return 0.0, nil
		case string:
			t := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(x), "_", ""))
			switch t {
			case "inf", "+inf", "infinity":
				return math.Inf(1), nil
			case "-inf", "-infinity":
				return math.Inf(-1), nil
			case "nan":
				return math.NaN(), nil
			}
			f, err := strconv.ParseFloat(t, 64)
			if err != nil || strings.ContainsAny(t, "x") {
				return nil, fmt.Errorf("could not convert string to float: %s", pyQuote(x))
			}
			return f, nil
		}
	case "bool":
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			return x != 0, nil
		case float64:
			return x != 0, nil
		case string:
			b, ok := parseBoolWord(x)
			if !ok {
				return nil, fmt.Errorf("%s is not a bool (use true/false/1/0/yes/no)", pyQuote(x))
			}
			return b, nil
		case []any:
			return len(x) > 0, nil
		case map[string]any:
			return len(x) > 0, nil
		}
	case "list", "mlist", "tuple":
		var items []any
		switch x := v.(type) {
		case []any:
			items = x
		case tuple:
			items = []any(x)
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				items = append(items, k)
			}
		case string:
			lit, err := parseLiteral(x)
			if err != nil {
				return nil, fmt.Errorf("Failed to coerce string to %s: %s", dtype, pyQuote(x))
			}
			switch l := lit.(type) {
			case []any:
				items = l
			case tuple:
				items = []any(l)
			default:
				return nil, fmt.Errorf("Failed to coerce string to %s: %s", dtype, pyQuote(x))
			}
		default:
			return nil, fmt.Errorf("'%s' object is not iterable", pyTypeName(v))
		}
		if items == nil {
			items = []any{}
		}
		if dtype == "tuple" {
			return tuple(items), nil
		}
		return items, nil
	case "dict":
		switch x := v.(type) {
		case map[string]any:
			return x, nil
		case string:
			lit, err := parseLiteral(x)
			if m, ok := lit.(map[string]any); err == nil && ok {
				return m, nil
			}
			return nil, fmt.Errorf("Failed to coerce string to dict: %s", pyQuote(x))
		}
		return nil, fmt.Errorf("cannot convert %s to dict", pyRepr(v))
	case "datetime":
		return toDatetime(v)
	default:
		return nil, fmt.Errorf("unknown type %s", pyQuote(dtype))
	}
	return nil, fmt.Errorf("cannot convert %s to %s", pyRepr(v), dtype)
}

// now is replaceable so that tests of "now"/"today" are deterministic.
var now = time.Now

func toDatetime(v any) (any, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case int64:
		// pandas.to_datetime reads a bare integer as nanoseconds.
		return time.Unix(0, x).UTC(), nil
	case float64:
		return time.Unix(0, int64(x)).UTC(), nil
	case map[string]any:
		if s, ok := x["as_str"].(string); ok {
			return toDatetime(s)
		}
	case string:
		s := strings.TrimSpace(x)
		switch strings.ToLower(s) {
		case "now":
			return now().UTC(), nil
		case "today":
			t := now()
			return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC), nil
		case "":
			return time.Unix(0, 0).UTC(), nil
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02", "2006-01", "2006", "20060102"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t, nil
			}
		}
		return nil, fmt.Errorf("Unknown string format: %s", s)
	}
	return nil, fmt.Errorf("cannot convert %s to datetime", pyRepr(v))
}

func pyTypeName(v any) string {
	switch v.(type) {
	case int64, int:
		return "int"
	case float64:
		return "float"
	case bool:
		return "bool"
	case string:
		return "str"
	case nil:
		return "NoneType"
	}
	return reflect.TypeOf(v).String()
}

func contains(list []any, v any) bool {
	for _, a := range list {
		if equalValues(a, v) {
			return true
		}
	}
	return false
}

// equalValues compares as Python's == does for catalog values (1 == 1.0).
func equalValues(a, b any) bool {
	if fa, ok := toFloat(a); ok {
		if fb, ok := toFloat(b); ok {
			return fa == fb
		}
	}
	if ta, ok := a.(time.Time); ok {
		if tb, ok := b.(time.Time); ok {
			return ta.Equal(tb)
		}
	}
	return reflect.DeepEqual(a, b)
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case float64:
		return x, true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func less(a, b any) bool {
	if fa, ok := toFloat(a); ok {
		if fb, ok := toFloat(b); ok {
			return fa < fb
		}
	}
	switch x := a.(type) {
	case string:
		if y, ok := b.(string); ok {
			return x < y
		}
	case time.Time:
		if y, ok := b.(time.Time); ok {
			return x.Before(y)
		}
	}
	return false
}
