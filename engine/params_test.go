package engine

import (
	"strings"
	"testing"
	"time"
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
		{"int", "1.5", "ERR:invalid literal for int() with base 10: '1.5'"},
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
		{"list", "abc", "ERR:Failed to coerce string to list"},
		{"tuple", "(10, 20)", "(10, 20)"},
		{"tuple", []any{int64(1)}, "(1,)"},
		{"dict", "{'a': 1}", "{'a': 1}"},
		{"mlist", "['a']", "['a']"},
		{"list[int]", []any{"1", "2"}, "[1, 2]"},
		{"datetime", "2020-01-02", "Timestamp('2020-01-02 00:00:00')"},
		{"datetime", "2020-01-02T03:04:05Z", "Timestamp('2020-01-02 03:04:05')"},
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
	if v, _ := p.Coerce("today"); pyStr(v) != "2024-05-06 00:00:00" {
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
