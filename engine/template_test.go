package engine

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func testEnv(vars map[string]string) *Env {
	e := DefaultEnv()
	e.Getenv = func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	return e
}

func TestRenderString(t *testing.T) {
	env := testEnv(map[string]string{"USER": "blogs", "HOME": "/home/b"})
	ctx := map[string]any{"n": int64(3), "f": 1.5, "whole": 2.0, "b": true, "s": "x", "l": []any{"a", int64(1)}, "CATALOG_DIR": "/c/"}
	cases := []struct{ in, want string }{
		{"plain", "plain"},
		{"trailing\n", "trailing"},
		{"{{ CATALOG_DIR }}/x.csv", "/c//x.csv"},
		{"{{ n }}-{{ f }}-{{ whole }}-{{ b }}", "3-1.5-2.0-True"},
		{"{{ l }}", "['a', 1]"},
		{"{{ undefined }}|", "|"},
		{"http://server/user/{{env(USER)}}", "http://server/user/blogs"},
		{`{{ env("HOME") }}`, "/home/b"},
		{`{{ client_env("USER") }}`, "blogs"},
		{`{{ env("NOPE") }}|`, "|"},
		{"{{ s|upper }}", "X"},
		{"{% if n > 2 %}big{% else %}small{% endif %}", "big"},
		{"{% if b %}yes{% endif %}", "yes"},
		{"<&>{{ s }}", "<&>x"},
	}
	for _, c := range cases {
		got, err := env.RenderString(c.in, ctx)
		if err != nil || got != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	if _, err := env.RenderString(`{{ shell("echo hi") }}`, ctx); err == nil || !strings.Contains(err.Error(), ShellFlag) {
		t.Errorf("shell without opt-in: %v", err)
	}
	env.AllowShell = true
	if got, err := env.RenderString(`{{ shell("echo hi") }}`, ctx); err != nil || got != "hi" {
		t.Errorf("shell with opt-in: %q %v", got, err)
	}
}

func TestExpandDefault(t *testing.T) {
	env := testEnv(map[string]string{"HOME": "/home/b"})
	for in, want := range map[string]string{"env(HOME)": "/home/b", "client_env(HOME)": "/home/b", "env(NOPE)": "", "plain": "plain"} {
		if got, err := env.ExpandDefault(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	if _, err := env.ExpandDefault("shell(echo hi)"); err == nil {
		t.Error("shell() default ran without opt-in")
	}
}

// FuzzRender: rendering any text never panics (the engine's recover is
// off here so that a panic is seen), never runs away (steps and output are
// bounded), is deterministic, and leaves text without "{" as it is
// (newlines normalised, one trailing newline dropped, as jinja2 does).
func FuzzRender(f *testing.F) {
	for _, s := range []string{"{{ x }}", "{% if x %}a{% endif %}", "{{ env(USER) }}", "{{", "}}{%", "{{ x|upper }}",
		"{{ CATALOG_DIR }}/data/{{ x }}.csv", "{% for i in l %}{{ loop.index }}{{ i }}{% else %}-{% endfor %}",
		"{{ n * 2 + f }} {{ n // 0 }}", "{{ d.k }} {{ d['k'] }} {{ d.nope.x }}", "{{ [1, 'a', (2,), {'k': none}] }}",
		"{{ l|join(', ')|default('x', true) }}", "{%- set a, b = 1, 2 -%} {{ a ~ b }}", "{% raw %}{{ x }}{% endraw %}",
		"{# c #}x\r\ny\n", "{{ '%s-%05.2f'|format(x, f) }}", "{{ x if b else 'no' }}", "{{ 1e308 * 10 }} {{ -9223372036854775807 - 2 }}",
		"{{ 2 ** 64 }}", "{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", "{{ 'x' * 99999999 }}",
		"{{ dt.year }} {{ dt.strftime('%Y') }} {{ t[0] }} {{ t[1:] }}", "{% if %}", "{{ x }", "{{ ((((((((((1)))))))))) }}",
		"{{ s.split(',')|map('upper')|list }}", "{{ x is defined and x is string }}", "{{ nothere.attr }}"} {
		f.Add(s)
	}
	env := testEnv(map[string]string{"USER": "u"})
	ctx := map[string]any{"x": "v", "n": int64(3), "f": 1.5, "b": true, "none": nil, "s": "a,b",
		"l": []any{int64(1), "a", 2.5}, "d": map[string]any{"k": []any{int64(1)}}, "t": tuple{int64(1), "x"},
		"dt": time.Date(2020, 1, 2, 3, 4, 5, 0, naiveLoc), "CATALOG_DIR": "/c/"}
	jRecover = false
	defer func() { jRecover = true }()
	f.Fuzz(func(t *testing.T, s string) {
		start := time.Now()
		out, err := env.RenderString(s, ctx)
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("rendering %q took %v", s, d)
		}
		if err != nil {
			var se *jSyntaxError
			var re *jRuntimeError
			if !errors.As(err, &se) && !errors.As(err, &re) && !errors.Is(err, ErrShellDisabled) {
				t.Fatalf("%q: unexpected kind of error %T: %v", s, err, err)
			}
			return
		}
		if len(out) > jMaxOutput+jMaxItems*8 {
			t.Fatalf("%q: output of %d bytes", s, len(out))
		}
		if !strings.Contains(s, "{") && out != normalizeNewlines(s) {
			t.Fatalf("plain text changed: %q -> %q", s, out)
		}
		if again, err := env.RenderString(s, ctx); err != nil || again != out {
			t.Fatalf("%q renders as %q, then as %q (%v)", s, out, again, err)
		}
	})
}

// A shell() command that prints without end is cut off and counts as a
// failure (empty), rather than filling the daemon's memory.
func TestShellOutputBounded(t *testing.T) {
	env := testEnv(nil)
	env.AllowShell = true
	got, err := env.ExpandDefault("shell(head -c 5000000 /dev/zero)")
	if err != nil || got != "" {
		t.Fatalf("got %d bytes, %v; want the empty string", len(got), err)
	}
	if got, _ := env.ExpandDefault("shell(echo small)"); got != "small" {
		t.Fatalf("small output: %q", got)
	}
}
