package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"
)

// ShellFlag is the mount flag that allows shell() and client_shell().
const ShellFlag = "--allow-shell"

// ErrShellDisabled is returned for shell()/client_shell() without the
// opt-in flag.
var ErrShellDisabled = errors.New("shell() and client_shell() are disabled: start intakefs with " + ShellFlag + " to allow them")

// Env is what templates and defaults may read from the daemon's world.
type Env struct {
	Getenv     func(string) (string, bool)
	AllowShell bool
	// ShellTimeout bounds a shell() command.
	ShellTimeout time.Duration
}

// DefaultEnv reads the process environment and forbids shell().
func DefaultEnv() *Env { return &Env{Getenv: os.LookupEnv, ShellTimeout: 10 * time.Second} }

func (e *Env) getenv(name, def string) string {
	if v, ok := e.Getenv(name); ok {
		return v
	}
	return def
}

func (e *Env) shell(cmdline string) (string, error) {
	if !e.AllowShell {
		return "", ErrShellDisabled
	}
	args := splitShellWords(cmdline)
	if len(args) == 0 {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.ShellTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	out := &limitedBuffer{max: maxShellOutput}
	cmd.Stdout = out
	if err := cmd.Run(); err != nil || out.over {
		// Intake turns a failing command into the empty string; one that
		// writes more than a value can sensibly be is treated the same
		return "", nil
	}
	return strings.TrimRight(out.b.String(), " \t\r\n"), nil
}

// maxShellOutput bounds what a shell() command may print.
const maxShellOutput = 1 << 20

// limitedBuffer keeps at most max bytes and notes that there was more.
type limitedBuffer struct {
	b    strings.Builder
	max  int
	over bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > l.max {
		l.over = true
		return 0, errShellOutput
	}
	l.b.Write(p)
	return len(p), nil
}

var errShellOutput = errors.New("shell() output too large")

// templateCache holds compiled templates by source text: catalogs repeat
// the same few templates across thousands of sources. Only catalog text
// is ever compiled (a value from a path is never a template), so the
// cache is bounded by the catalogs' size.
var templateCache sync.Map // string -> *jTemplate or error

func compileTemplate(s string) (*jTemplate, error) {
	if t, ok := templateCache.Load(s); ok {
		if err, isErr := t.(error); isErr {
			return nil, err
		}
		return t.(*jTemplate), nil
	}
	t, err := jCompile(s)
	if err != nil {
		templateCache.Store(s, err)
		return nil, err
	}
	templateCache.Store(s, t)
	return t, nil
}

// RenderString expands one string as Intake's jinja2 rendering does
// (see jinja_lex.go): undefined names are empty, env()/client_env()/
// shell()/client_shell() are available (a bare undefined name is passed
// by its name, as jinja2 passes an Undefined), line endings become \n
// and one trailing newline is dropped (keep_trailing_newline=False).
func (e *Env) RenderString(s string, ctx map[string]any) (string, error) {
	if !strings.Contains(s, "{") {
		return normalizeNewlines(s), nil
	}
	tpl, err := compileTemplate(s)
	if err != nil {
		return "", fmt.Errorf("template %q: %w", s, err)
	}
	nameOf := func(v any) string {
		if u, ok := v.(*jUndefined); ok {
			return u.name
		}
		return jStr(v)
	}
	env := jFunc(func(pos []any, kw map[string]any) (any, error) {
		if len(pos) < 1 {
			return nil, jErr("TypeError", "_j_getenv() missing 1 required positional argument: 'x'")
		}
		def := ""
		if d := jArg(pos, kw, 1, "default", nil); d != nil {
			def = nameOf(d)
		}
		return e.getenv(nameOf(pos[0]), def), nil
	})
	shell := jFunc(func(pos []any, kw map[string]any) (any, error) {
		if len(pos) < 1 {
			return nil, jErr("TypeError", "_j_getshell() missing 1 required positional argument: 'x'")
		}
		return e.shell(nameOf(pos[0]))
	})
	globals := map[string]any{
		"env": env, "client_env": env, "shell": shell, "client_shell": shell,
		"range": jFunc(jRange),
		"dict": jFunc(func(pos []any, kw map[string]any) (any, error) {
			out := map[string]any{}
			for k, v := range kw {
				out[k] = v
			}
			return out, nil
		}),
	}
	out, err := tpl.Render(ctx, globals)
	if errors.Is(err, ErrShellDisabled) {
		return "", ErrShellDisabled
	}
	if err != nil {
		return "", fmt.Errorf("template %q: %w", s, err)
	}
	return out, nil
}

// jRange is Python's range(), as a list.
func jRange(pos []any, kw map[string]any) (any, error) {
	ints := make([]int64, len(pos))
	for i, p := range pos {
		n, _, k, ok := jNum(p)
		if !ok || k != 1 {
			return nil, jErr("TypeError", "'%s' object cannot be interpreted as an integer", jTypeName(p))
		}
		ints[i] = n
	}
	var start, stop, step int64 = 0, 0, 1
	switch len(ints) {
	case 1:
		stop = ints[0]
	case 2:
		start, stop = ints[0], ints[1]
	case 3:
		start, stop, step = ints[0], ints[1], ints[2]
	default:
		return nil, jErr("TypeError", "range expected at most 3 arguments, got %d", len(ints))
	}
	if step == 0 {
		return nil, jErr("ValueError", "range() arg 3 must not be zero")
	}
	out := []any{}
	for i := start; (step > 0 && i < stop) || (step < 0 && i > stop); i += step {
		if len(out) >= 100000 {
			return nil, jErr("OverflowError", "range too large for a template (intakefs allows 100000 items)")
		}
		out = append(out, i)
	}
	return out, nil
}

var (
	reEnv         = regexp.MustCompile(`^env\((.*),?(.*)\)`)
	reClientEnv   = regexp.MustCompile(`^client_env\((.*)\)`)
	reShell       = regexp.MustCompile(`^shell\((.*)\)`)
	reClientShell = regexp.MustCompile(`^client_shell\((.*)\)`)
)

// ExpandDefault applies Intake's expand_defaults to a string default:
// env(NAME), client_env(NAME), shell(cmd), client_shell(cmd), each applied
// in turn to what the previous one left, as Intake does. There is no
// client-server split in intakefs, so the client_ forms read the daemon's
// environment too (SPEC §3; Intake leaves them unexpanded outside a
// client).
func (e *Env) ExpandDefault(s string) (string, error) {
	if m := reEnv.FindStringSubmatch(s); m != nil {
		s = e.getenv(m[1], m[2])
	}
	if m := reClientEnv.FindStringSubmatch(s); m != nil {
		s = e.getenv(m[1], "")
	}
	if m := reShell.FindStringSubmatch(s); m != nil {
		out, err := e.shell(m[1])
		if err != nil {
			return "", err
		}
		s = out
	}
	if m := reClientShell.FindStringSubmatch(s); m != nil {
		out, err := e.shell(m[1])
		if err != nil {
			return "", err
		}
		s = out
	}
	return s, nil
}

// splitShellWords is shlex.split for the common cases: whitespace, single
// and double quotes, backslash escapes.
func splitShellWords(s string) []string {
	var out []string
	var cur strings.Builder
	inWord := false
	var quote rune
	esc := false
	for _, r := range s {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case r == '\\' && quote != '\'':
			esc, inWord = true, true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out
}
