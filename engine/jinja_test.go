package engine

import (
	"strings"
	"testing"
)

// The expected outputs and errors below are what jinja2 3.1 (Debian's,
// under Intake) gives for the same templates and context; the
// differential test (diff_test.go) checks many more against Intake itself.

var jinjaCases = []struct{ in, want string }{
	{"{{ n }}-{{ f }}-{{ 2.0 }}-{{ 10 / 4 }}-{{ 7 // 2 }}-{{ -7 // 2 }}-{{ 7 % -3 }}-{{ 2 ** 10 }}", "3-1.5-2.0-2.5-3--4--2-1024"},
	{"{{ [1, 'a', (2,), none, true] }} {{ (1, 2) }} {{ {'k': 1} }}", "[1, 'a', (2,), None, True] (1, 2) {'k': 1}"},
	{"{{ x }}|{{ x|default('d') }}|{{ e|default('d') }}|{{ e|default('d', true) }}|{{ x is defined }}", "|d||d|False"},
	{"{% for i in l %}{{ loop.index }}{{ i }}{% if not loop.last %},{% endif %}{% else %}none{% endfor %}", "13,21,32"},
	{"{% for k, v in d|dictsort %}{{ k }}={{ v }};{% endfor %}", "a=1;b=[1, 2];"},
	{"{% if n > 5 %}big{% elif n > 2 %}mid{% else %}small{% endif %}", "mid"},
	{"{{ s|lower|replace(' ', '_') }} {{ s|upper }} {{ s|title }} {{ 'hELLO'|capitalize }} {{ '  x '|trim }}", "hello_world HELLO WORLD Hello World Hello x"},
	{"{{ l|sort }} {{ l|join('-') }} {{ l|first }} {{ l|last }} {{ l|length }} {{ l|sum }} {{ l|max }}", "[1, 2, 3] 3-1-2 3 2 3 6 3"},
	{"{{ s.split() }} {{ s[1:4] }} {{ s[-1] }} {{ s.startswith('He') }} {{ '-'.join(['a', 'b']) }}", "['Hello', 'World'] ell d True a-b"},
	{"{{ 'a' ~ n ~ f ~ none }} {{ 'ab' * 2 }} {{ [0] * 2 }} {{ n ~ '' }}", "a31.5None abab [0, 0] 3"},
	{"{{ 1 < 2 < 3 }} {{ [1] == (1,) }} {{ 1 == 1.0 }} {{ 'x' in s }} {{ 3 in l }} {{ 'a' in d }} {{ not b }}", "True False True False True True True"},
	{"{{ 'y' if b else 'n' }} {{ b or 'dflt' }} {{ n and 'yes' }}", "n dflt yes"},
	{"{% set a, c = 1, 2 %}{{ a + c }} {% for i in range(3) %}{{ i }}{% endfor %}", "3 012"},
	{"{%- if true -%}  x  {%- endif -%}|{# c #}{% raw %}{{ y }}{% endraw %}", "x|{{ y }}"},
	{"{{ '%s=%05.1f'|format('v', f) }} {{ '{}/{}'.format(n, 'x') }} {{ d|tojson }} {{ 'a b'|urlencode }}", "v=001.5 3/x {\"a\": 1, \"b\": [1, 2]} a%20b"},
	{"{{ 2.675|round(2) }} {{ 2.5|round }} {{ '4.9'|int }} {{ 'x'|int(7) }} {{ '1e2'|float }} {{ -3|abs }}", "2.67 2.0 4 7 100.0 3"},
	{"{{ n is odd }} {{ n is divisibleby 3 }} {{ l is iterable }} {{ d is mapping }} {{ none is none }}", "True True True True True"},
	{"{{ d.a }} {{ d['b'][1] }} {{ d.get('z', 0) }} {{ d.nope }}|", "1 2 0 |"},
	{"a\r\nb\n", "a\nb"},
	{"{{ 1e16 }} {{ 0.1 + 0.2 }} {{ 1e-5 }} {{ 123456789.0 }}", "1e+16 0.30000000000000004 1e-05 123456789.0"},
}

var jinjaErrors = []struct{ in, want string }{
	{"{{ x }", "unexpected '}'"},
	{"{% endfor %}", "Encountered unknown tag 'endfor'."},
	{"{% if %}", "Expected an expression, got 'end of statement block'"},
	{"{{ 'x'|nosuch }}", "No filter named 'nosuch'."},
	{"{{ 'a' + 1 }}", "can only concatenate str (not \"int\") to str"},
	{"{{ 1 / 0 }}", "division by zero"},
	{"{% if true %}x", "Unexpected end of template. Jinja was looking for the following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'."},
	{"{{ x.y }}", "'x' is undefined"},
	{"{{ x + 1 }}", "'x' is undefined"},
	{"{{ '' < 1 }}", "'<' not supported between instances of 'str' and 'int'"},
}

func jinjaCtx() map[string]any {
	return map[string]any{"n": int64(3), "f": 1.5, "s": "Hello World", "l": []any{int64(3), int64(1), int64(2)},
		"d": map[string]any{"a": int64(1), "b": []any{int64(1), int64(2)}}, "b": false, "e": ""}
}

func TestJinja(t *testing.T) {
	env := testEnv(nil)
	for _, c := range jinjaCases {
		got, err := env.RenderString(c.in, jinjaCtx())
		if err != nil || got != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, c := range jinjaErrors {
		_, err := env.RenderString(c.in, jinjaCtx())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v; want an error with %q", c.in, err, c.want)
		}
	}
}

// Templates that would run away are stopped, not left to hang the daemon.
func TestJinjaBounds(t *testing.T) {
	env := testEnv(nil)
	for _, s := range []string{
		"{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}",
		"{{ 'x' * 99999999 }}",
		"{{ 2 ** 64 }}",
		"{{ " + strings.Repeat("(", 500) + "1" + strings.Repeat(")", 500) + " }}",
		"{{ " + strings.Repeat("[", 500) + strings.Repeat("]", 500) + " }}",
	} {
		if _, err := env.RenderString(s, nil); err == nil {
			t.Errorf("%.60q: no error", s)
		}
	}
}
