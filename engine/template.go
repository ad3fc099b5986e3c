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

	"github.com/flosch/pongo2/v6"
)

// Jinja2, as Intake uses it, does not escape HTML; pongo2 does by default.
func init() { pongo2.SetAutoescape(false) }

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
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).Output()
	if err != nil {
		// Intake turns a failing command into the empty string.
		return "", nil
	}
	return strings.TrimRight(string(out), " \t\r\n"), nil
}

// templateCache holds compiled templates by source text: catalogs repeat
// the same few templates across thousands of sources.
var templateCache sync.Map // string -> *pongo2.Template

// compileMu serialises pongo2.FromString.
var compileMu sync.Mutex

var bareCall = regexp.MustCompile(`\b(env|client_env|shell|client_shell)\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)`)

// Render expands one string as Intake's jinja2 rendering does: undefined
// names are empty, the env/shell functions are available, one trailing
// newline is dropped (jinja2's keep_trailing_newline=False).
func (e *Env) RenderString(s string, ctx map[string]any) (string, error) {
	if !strings.Contains(s, "{") {
		return strings.TrimSuffix(s, "\n"), nil
	}
	// jinja2 passes an undefined bare name (env(USER)) by its name.
	src := bareCall.ReplaceAllStringFunc(s, func(m string) string {
		sub := bareCall.FindStringSubmatch(m)
		if _, defined := ctx[sub[2]]; defined {
			return m
		}
		return sub[1] + `("` + sub[2] + `")`
	})
	var tpl *pongo2.Template
	if t, ok := templateCache.Load(src); ok {
		tpl = t.(*pongo2.Template)
	} else {
		// pongo2's default template set is not safe for concurrent
		// compiles; executing compiled templates is.
		compileMu.Lock()
		t, err := pongo2.FromString(src)
		compileMu.Unlock()
		if err != nil {
			return "", fmt.Errorf("template %q: %v", s, cleanPongoErr(err))
		}
		templateCache.Store(src, t)
		tpl = t
	}
	pc := pongo2.Context{}
	for k, v := range ctx {
		pc[k] = toTemplate(v)
	}
	var shellErr error
	env := func(name string, def ...string) string {
		d := ""
		if len(def) > 0 {
			d = def[0]
		}
		return e.getenv(name, d)
	}
	shell := func(cmd string) string {
		out, err := e.shell(cmd)
		if err != nil {
			shellErr = err
		}
		return out
	}
	pc["env"] = env
	pc["client_env"] = env
	pc["shell"] = shell
	pc["client_shell"] = shell
	out, err := tpl.Execute(pc)
	if shellErr != nil {
		return "", shellErr
	}
	if err != nil {
		return "", fmt.Errorf("template %q: %v", s, cleanPongoErr(err))
	}
	return strings.TrimSuffix(out, "\n"), nil
}

func cleanPongoErr(err error) string {
	var pe *pongo2.Error
	if errors.As(err, &pe) {
		if pe.OrigError != nil {
			return pe.OrigError.Error()
		}
	}
	return err.Error()
}

var (
	reEnv         = regexp.MustCompile(`^env\((.*),?(.*)\)`)
	reClientEnv   = regexp.MustCompile(`^client_env\((.*)\)`)
	reShell       = regexp.MustCompile(`^shell\((.*)\)`)
	reClientShell = regexp.MustCompile(`^client_shell\((.*)\)`)
)

// ExpandDefault applies Intake's expand_defaults to a string default:
// env(NAME), client_env(NAME), shell(cmd), client_shell(cmd). There is no
// client-server split in intakefs, so the client_ forms read the daemon's
// environment too (SPEC §3).
func (e *Env) ExpandDefault(s string) (string, error) {
	if m := reEnv.FindStringSubmatch(s); m != nil {
		return e.getenv(m[1], m[2]), nil
	}
	if m := reClientEnv.FindStringSubmatch(s); m != nil {
		return e.getenv(m[1], ""), nil
	}
	if m := reShell.FindStringSubmatch(s); m != nil {
		return e.shell(m[1])
	}
	if m := reClientShell.FindStringSubmatch(s); m != nil {
		return e.shell(m[1])
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
