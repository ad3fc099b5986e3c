package engine

import (
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestCoerce(t *testing.T) {
	cases := []struct {
		typ  string
		in   any
		want string // pyRepr of the result, or "ERR:substring"
	}{
		{"str", int64(10), "'10'"},
		{"str", nil, "''"},
		{"int", "42", "42"},
		{"int", " 7 ", "7"},
		// Intake 0.7 reads the string as a literal first: 1.5, then int()
		{"int", "1.5", "1"},
		{"int", "abc", "ERR:invalid literal for int() with base 10: 'abc'"},
		{"int", "0x10", "16"},
		{"int", "05", "5"}, // 0.7: SyntaxError; intakefs: int('05') as 0.6.6
		{"int", 2.9, "2"},
		{"int", nil, "0"},
		{"float", "1e3", "1000.0"},
		{"float", int64(2), "2.0"},
		{"float", "x", "ERR:could not convert string to float: 'x'"},
		{"bool", "yes", "True"},
		{"bool", "FALSE", "False"},
		{"bool", "maybe", "ERR:is not a bool"},
		{"bool", int64(0), "False"},
		{"list", "[1, 'a']", "[1, 'a']"},
		{"list", "(1, 2)", "[1, 2]"},
		{"list", "abc", "['a', 'b', 'c']"}, // Python's list('abc')
		{"list", "1, 2", "[1, 2]"},
		{"list", 5, "ERR:'int' object is not iterable"},
		{"tuple", "(10, 20)", "(10, 20)"},
		{"tuple", []any{int64(1)}, "(1,)"},
		{"dict", "{'a': 1}", "{'a': 1}"},
		{"mlist", "['a']", "['a']"},
		// a value already of the outer type is kept as it is (Intake)
		{"list[int]", []any{"1", "2"}, "['1', '2']"},
		{"list[int]", `["1", "2"]`, "[1, 2]"},
		{"dict", "abc", "ERR:dictionary update sequence element #0 has length 1; 2 is required"},
		{"bool", "False", "False"},
		{"bool", "[]", "False"},
		{"other", "[1]", "[1]"},
		{"datetime", "2020-01-02", "Timestamp('2020-01-02 00:00:00')"},
		{"datetime", "2020-01-02T03:04:05Z", "Timestamp('2020-01-02 03:04:05+00:00')"},
		{"datetime", "2020-01-02T03:04:05", "Timestamp('2020-01-02 03:04:05')"},
		{"datetime", "2020-13-01", "ERR:month must be in 1..12"},
		{"datetime", int64(0), "Timestamp('1970-01-01 00:00:00')"},
		{"datetime", "garbage", "ERR:Unknown string format"},
	}
	for _, c := range cases {
		p := &Param{Name: "p", Type: c.typ}
		got, err := p.Coerce(c.in)
		if strings.HasPrefix(c.want, "ERR:") {
			if err == nil || !strings.Contains(err.Error(), c.want[4:]) {
				t.Errorf("%s(%v): got %v, %v; want error %q", c.typ, c.in, pyRepr(got), err, c.want[4:])
			}
			continue
		}
		if err != nil || pyRepr(got) != c.want {
			t.Errorf("%s(%#v): got %s, %v; want %s", c.typ, c.in, pyRepr(got), err, c.want)
		}
	}
}

func TestValidateMessages(t *testing.T) {
	cases := []struct {
		p    Param
		in   any
		want string
	}{
		{Param{Name: "part", Type: "str", Allowed: []any{int64(1), int64(2)}}, "latest", "part=latest is not one of the allowed values: 1,2"},
		{Param{Name: "n", Type: "int", Min: int64(1)}, int64(0), "n=0 is less than 1"},
		{Param{Name: "n", Type: "int", Max: int64(9)}, "10", "n=10 is greater than 9"},
		{Param{Name: "m", Type: "mlist", Allowed: []any{"a", "b"}}, []any{"a", "c"}, "Item c not in allowed list"},
		{Param{Name: "n", Type: "float", Min: 0.5}, 0.75, ""},
	}
	for _, c := range cases {
		_, err := c.p.Validate(c.in)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: unexpected %v", c.p.Name, err)
			}
			continue
		}
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: got %v, want %q", c.p.Name, err, c.want)
		}
	}
}

func TestFromPath(t *testing.T) {
	cases := []struct {
		typ, in, want string
	}{
		{"bool", "Yes", "True"},
		{"bool", "0", "False"},
		{"list", "a,b", "['a', 'b']"},
		{"list", "[1,2]", "[1, 2]"},
		{"list", "", "[]"},
		{"int", "5", "5"},
		{"str", "env(HOME)", "'env(HOME)'"},
		{"str", "{{ x }}", "'{{ x }}'"},
	}
	for _, c := range cases {
		p := &Param{Name: "p", Type: c.typ}
		got, err := p.FromPath(c.in)
		if err != nil || pyRepr(got) != c.want {
			t.Errorf("%s %q: %s %v, want %s", c.typ, c.in, pyRepr(got), err, c.want)
		}
	}
	if _, err := (&Param{Name: "b", Type: "bool"}).FromPath("maybe"); err == nil {
		t.Error("bool maybe accepted")
	}
}

func TestDatetimeNow(t *testing.T) {
	fixed := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	now = func() time.Time { return fixed }
	defer func() { now = time.Now }()
	p := &Param{Name: "d", Type: "datetime"}
	// pandas: "today" is the current local time, not midnight
	if v, _ := p.Coerce("today"); pyStr(v) != "2024-05-06 07:08:09" {
		t.Errorf("today: %v", pyStr(v))
	}
	if v, _ := p.Coerce("now"); pyStr(v) != "2024-05-06 07:08:09" {
		t.Errorf("now: %v", pyStr(v))
	}
}

func TestPyRepr(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{1.0, "1.0"}, {0.1, "0.1"}, {1e-5, "1e-05"}, {1e16, "1e+16"}, {123456789.0, "123456789.0"},
		{"it's", `"it's"`}, {map[string]any{"b": int64(1), "a": "x"}, "{'a': 'x', 'b': 1}"}, {nil, "None"},
	} {
		if got := pyRepr(c.v); got != c.want {
			t.Errorf("pyRepr(%#v) = %s, want %s", c.v, got, c.want)
		}
	}
}

// FuzzParseLiteral: reading a Python literal never panics, and what it
// reads prints (as Python's repr) to a literal that reads back equal.
func FuzzParseLiteral(f *testing.F) {
	for _, s := range []string{"[1, 'a', (2,), {'k': None}]", "(10, 20)", "1_000", "0x1F", "-1.5e-3", "'it\\'s'", `"a" 'b'`,
		"{1, 2}", "1, 2", "05", "1e", "[1, 2", "True", "nan", "{'a': [1, {'b': ()}]}", "r'\\d'", "'''x'''", "  7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // a Python str is text; FUSE names that are not UTF-8 never reach Python
		}
		v, err := parseLiteral(s)
		if err != nil || hasNonFinite(v) {
			return
		}
		r := pyRepr(v)
		back, err := parseLiteral(r)
		if err != nil || !pyEqual(v, back) {
			t.Fatalf("%q reads as %s, which reads back as %s (%v)", s, r, pyRepr(back), err)
		}
	})
}

func hasNonFinite(v any) bool {
	switch x := v.(type) {
	case float64:
		return math.IsNaN(x) || math.IsInf(x, 0)
	case []any:
		for _, e := range x {
			if hasNonFinite(e) {
				return true
			}
		}
	case tuple:
		return hasNonFinite([]any(x))
	case map[string]any:
		for _, e := range x {
			if hasNonFinite(e) {
				return true
			}
		}
	}
	return false
}

// FuzzFromPath: a value from a path, for every parameter type, is either
// refused with a ParamError or gives a value of the parameter's type.
func FuzzFromPath(f *testing.F) {
	for _, s := range []string{"5", "a,b", "[1, 2]", "(1,)", "{'a': 1}", "{a: 1}", "true", "2020-01-02T03:04:05Z", "", "1.5", "x%y", "[a, b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, typ := range append(ParamTypes, "list[int]", "dict[str]") {
			p := &Param{Name: "p", Type: typ}
			v, err := p.FromPath(s)
			if err != nil {
				if !isParamErr(err) {
					t.Fatalf("%s %q: %T %v", typ, s, err, err)
				}
				continue
			}
			base, _ := p.baseType()
			want := map[string]string{"unicode": "str", "mlist": "list"}[base]
			if want == "" {
				want = base
			}
			if got := pyTypeName(v); base != "other" && got != want {
				t.Fatalf("%s %q: got a %s (%s)", typ, s, got, pyRepr(v))
			}
		}
	})
}
