package engine

import (
	"strings"
	"testing"
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

func FuzzRender(f *testing.F) {
	for _, s := range []string{"{{ x }}", "{% if x %}a{% endif %}", "{{ env(USER) }}", "{{", "}}{%", "{{ x|upper }}"} {
		f.Add(s)
	}
	env := testEnv(map[string]string{"USER": "u"})
	f.Fuzz(func(t *testing.T, s string) {
		out, err := env.RenderString(s, map[string]any{"x": "v"})
		if err == nil && !strings.Contains(s, "{") && out != strings.TrimSuffix(s, "\n") {
			t.Fatalf("plain text changed: %q -> %q", s, out)
		}
	})
}
