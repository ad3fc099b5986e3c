package engine

// The differential test: every case under testdata/diff/ is run through
// Intake itself (scripts/intake_diff.py, one Python process for all of
// them) and through the engine (FS.Walk, Env.Render), and the listing, the
// rendered args, the rendered metadata and the error are compared.
//
// A case file holds a catalog and its files, environment variables, and
// queries; see testdata/diff/README.md. A query marked `deliberate:` is one
// where intakefs differs from Intake on purpose: the test then checks the
// query's `intakefs:` expectation instead of Intake's result. A query whose
// result differs between Intake 0.6.6's coercion and 0.7's must say why in
// `differs_066:` (intakefs follows 0.7).
//
// The test needs /usr/bin/python3 with Intake (Debian's python3-intake).
// Without it the test is skipped, except under CI, where it fails.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const diffPython = "/usr/bin/python3"

type diffCase struct {
	Note       string            `yaml:"note"`
	Env        map[string]any    `yaml:"env"`
	AllowShell bool              `yaml:"allow_shell"`
	Root       string            `yaml:"root"`
	Files      map[string]string `yaml:"files"`
	Queries    []diffQuery       `yaml:"queries"`
}

type diffQuery struct {
	Path       string            `yaml:"path"`
	Ext        string            `yaml:"ext"`
	Params     map[string]string `yaml:"params"`
	Py         map[string]any    `yaml:"py"`
	Env        map[string]any    `yaml:"env"`
	Deliberate string            `yaml:"deliberate"`
	Differs066 string            `yaml:"differs_066"`
	Intakefs   *diffExpect       `yaml:"intakefs"`
}

// diffExpect is what intakefs gives for a deliberate difference.
type diffExpect struct {
	Error    string         `yaml:"error"`
	NotFound bool           `yaml:"not_found"`
	Args     map[string]any `yaml:"args"`
	Metadata map[string]any `yaml:"metadata"`
	// Listing is the entry names with "/" after nested catalogs.
	Listing []string       `yaml:"listing"`
	Params  map[string]any `yaml:"params"`
}

// diffResult is one side's answer, in intake_diff.py's encoding.
type diffResult struct {
	Listing  [][2]any       `json:"listing,omitempty"`
	Params   map[string]any `json:"params,omitempty"`
	Args     map[string]any `json:"args,omitempty"`
	Metadata map[string]any `json:"metadata,omitempty"`
	Error    *diffError     `json:"error,omitempty"`
	// goErr is the engine's error, for errors.Is checks.
	goErr error
}

type diffError struct {
	Type string `json:"type"`
	Msg  string `json:"msg"`
}

type diffOutput struct {
	Intake string `json:"intake"`
	Cases  map[string][]struct {
		Path string          `json:"path"`
		V07  json.RawMessage `json:"0.7"`
		V066 json.RawMessage `json:"0.6.6"`
	} `json:"cases"`
}

func loadDiffCases(t *testing.T) (map[string]*diffCase, []string) {
	t.Helper()
	files, err := filepath.Glob("../testdata/diff/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases in testdata/diff: %v", err)
	}
	cases := map[string]*diffCase{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c diffCase
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if c.Root == "" {
			c.Root = "catalog.yaml"
		}
		cases[strings.TrimSuffix(filepath.Base(f), ".yaml")] = &c
	}
	return cases, files
}

func intakeAvailable() error {
	out, err := exec.Command(diffPython, "-c", "import intake, pandas; print(intake.__version__)").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s cannot import intake: %v: %s", diffPython, err, bytes.TrimSpace(out))
	}
	return nil
}

func TestDiffAgainstIntake(t *testing.T) {
	if err := intakeAvailable(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the differential test must run in CI: %v (install python3-intake)", err)
		}
		t.Skipf("skipping the differential test: %v", err)
	}
	cases, files := loadDiffCases(t)
	work := t.TempDir()
	for name, c := range cases {
		materialiseCase(t, filepath.Join(work, name), c)
	}
	args := append([]string{"../scripts/intake_diff.py", "--workdir", work}, files...)
	cmd := exec.Command(diffPython, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("intake_diff.py: %v\n%s", err, stderr.String())
	}
	t.Logf("Intake ran %d cases in %v", len(cases), time.Since(start).Round(time.Millisecond))
	var out diffOutput
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("intake_diff.py output: %v", err)
	}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	nq, ndel, n066 := 0, 0, 0
	for _, name := range names {
		c := cases[name]
		py := out.Cases[name]
		if len(py) != len(c.Queries) {
			t.Fatalf("%s: Intake answered %d queries of %d", name, len(py), len(c.Queries))
		}
		dir := filepath.Join(work, name)
		for i, q := range c.Queries {
			nq++
			label := fmt.Sprintf("%s/%d:%s", name, i, q.Path)
			t.Run(label, func(t *testing.T) {
				want07 := decodeDiffResult(t, py[i].V07)
				want066 := decodeDiffResult(t, py[i].V066)
				if !sameResult(want07, want066) {
					n066++
					if q.Differs066 == "" {
						t.Errorf("Intake 0.6.6 and 0.7 differ here; say why in differs_066:\n0.7:   %s\n0.6.6: %s", show(want07), show(want066))
					}
				} else if q.Differs066 != "" {
					t.Errorf("differs_066 is set but 0.6.6 and 0.7 agree: %s", show(want07))
				}
				got := runEngineQuery(t, dir, c, q)
				if q.Deliberate != "" {
					ndel++
					if q.Intakefs == nil {
						t.Fatalf("deliberate difference without an intakefs: expectation")
					}
					if compareResults(want07, got) == "" {
						t.Errorf("marked deliberate, but intakefs now agrees with Intake: %s", show(got))
					}
					checkExpectation(t, dir, q.Intakefs, got)
					return
				}
				if msg := compareResults(want07, got); msg != "" {
					t.Errorf("%s\nIntake:   %s\nintakefs: %s", msg, show(want07), show(got))
				}
			})
		}
	}
	t.Logf("%d cases, %d queries: %d deliberate differences, %d where Intake 0.6.6 and 0.7 differ", len(cases), nq, ndel, n066)
}

func materialiseCase(t *testing.T, dir string, c *diffCase) {
	t.Helper()
	for rel, content := range c.Files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func decodeDiffResult(t *testing.T, raw json.RawMessage) *diffResult {
	t.Helper()
	var r diffResult
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return &r
}

// runEngineQuery answers a query with the engine, as the mount would.
func runEngineQuery(t *testing.T, dir string, c *diffCase, q diffQuery) *diffResult {
	t.Helper()
	env := map[string]any{}
	for k, v := range c.Env {
		env[k] = v
	}
	for k, v := range q.Env {
		env[k] = v
	}
	getenv := func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			if v == nil {
				return "", false
			}
			return fmt.Sprint(v), true
		}
		return os.LookupEnv(k)
	}
	fail := func(err error) *diffResult {
		return &diffResult{Error: &diffError{Type: fmt.Sprintf("%T", err), Msg: strings.ReplaceAll(err.Error(), dir, "{DIR}")}, goErr: err}
	}
	f, err := New(filepath.Join(dir, c.Root), Options{Cwd: dir, AllowShell: c.AllowShell, RootParams: q.Params})
	if err != nil {
		return fail(err)
	}
	t.Cleanup(f.Close)
	f.Env.Getenv = getenv
	ctx := context.Background()
	n, err := f.Walk(ctx, q.Path)
	if err != nil {
		return fail(err)
	}
	switch x := n.(type) {
	case *catalogDir:
		v, l, err := x.listing(ctx)
		if err != nil {
			return fail(err)
		}
		if v.Err != nil {
			return fail(v.Err)
		}
		if v.Err == nil && x.parent == nil {
			if rv := f.rootView(); rv.Err != nil {
				return fail(rv.Err)
			}
		}
		res := &diffResult{Listing: [][2]any{}, Params: map[string]any{}}
		for _, e := range v.Cat.Entries {
			if e.Name == "" {
				continue
			}
			if _, shown := l.names[EncodeName(e.Name)]; !shown {
				continue
			}
			res.Listing = append(res.Listing, [2]any{diffEncode(e.Name, dir), e.IsCatalog()})
		}
		for _, p := range v.Params {
			var d any
			if p.userSet {
				d = p.Default
			} else if cv, err := p.Coerce(p.Default); err == nil {
				d = cv
			}
			res.Params[p.Name] = diffEncode(d, dir)
		}
		return res
	case *sourceDir:
		if x.err != nil {
			return fail(x.err)
		}
		return renderedResult(x.r, dir)
	case *dataFile:
		if x.err != nil {
			return fail(x.err)
		}
		return renderedResult(x.r, dir)
	}
	return fail(fmt.Errorf("%s is a %T, not a source or a catalog", q.Path, n))
}

func renderedResult(r *Rendered, dir string) *diffResult {
	args, _ := diffEncode(r.Args, dir).(map[string]any)
	md, _ := diffEncode(r.Metadata, dir).(map[string]any)
	return &diffResult{Args: args, Metadata: md}
}

// diffEncode writes an engine value as intake_diff.py writes a Python one.
func diffEncode(v any, dir string) any {
	switch x := v.(type) {
	case nil, bool:
		return x
	case string:
		return strings.ReplaceAll(x, strings.TrimSuffix(dir, "/"), "{DIR}")
	case int:
		return int64(x)
	case int64:
		return x
	case float64:
		return map[string]any{"$float": pyFloatRepr(x)}
	case tuple:
		return map[string]any{"$tuple": diffEncode([]any(x), dir)}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = diffEncode(e, dir)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = diffEncode(e, dir)
		}
		return out
	case time.Time:
		if isDate(x) {
			return map[string]any{"$date": pyStr(x)}
		}
		return map[string]any{"$datetime": pyStr(x)}
	}
	return map[string]any{"$repr": pyRepr(v)}
}

// canon is a value's canonical JSON: sorted keys, numbers as written.
func canon(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	var g any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	_ = dec.Decode(&g)
	b, _ = json.Marshal(g)
	return string(b)
}

func show(r *diffResult) string {
	m := map[string]any{}
	if r.Error != nil {
		m["error"] = r.Error
	}
	if r.Listing != nil {
		m["listing"] = r.Listing
		m["params"] = r.Params
	}
	if r.Args != nil || r.Metadata != nil {
		m["args"] = r.Args
		m["metadata"] = r.Metadata
	}
	return canon(m)
}

func sameResult(a, b *diffResult) bool {
	return compareResults(a, b) == "" && (a.Error == nil) == (b.Error == nil) && errText(a) == errText(b)
}

func errText(r *diffResult) string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Type + ": " + r.Error.Msg
}

// compareResults says how got (intakefs) differs from want (Intake); ""
// when they agree. intakefs's error must contain Intake's message; a
// KeyError (no such entry) must be a not-found error.
func compareResults(want, got *diffResult) string {
	if want.Error != nil || got.Error != nil {
		if want.Error == nil {
			return "intakefs fails where Intake succeeds"
		}
		if got.Error == nil {
			return "Intake fails where intakefs succeeds"
		}
		if got.goErr == nil {
			// both from Python: compare as they are
			if want.Error.Msg != got.Error.Msg || want.Error.Type != got.Error.Type {
				return "different errors"
			}
			return ""
		}
		if want.Error.Type == "KeyError" {
			if !errors.Is(got.goErr, fs.ErrNotExist) {
				return "Intake has no such entry; intakefs's error is not ENOENT"
			}
			return ""
		}
		// jinja2 adds the place of an error on further lines
		// ("File "<introspection>", line 1"): the first line is the message
		msg, _, _ := strings.Cut(want.Error.Msg, "\n")
		if !strings.Contains(got.Error.Msg, msg) {
			return "intakefs's error does not contain Intake's message"
		}
		return ""
	}
	if canon(want.Listing) != canon(got.Listing) {
		return "listings differ"
	}
	if canon(want.Params) != canon(got.Params) {
		return "catalog parameters differ"
	}
	if canon(want.Args) != canon(got.Args) {
		return "args differ"
	}
	if canon(want.Metadata) != canon(got.Metadata) {
		return "metadata differ"
	}
	return ""
}

// checkExpectation checks a deliberate difference's intakefs: block.
func checkExpectation(t *testing.T, dir string, x *diffExpect, got *diffResult) {
	t.Helper()
	if x.Error != "" || x.NotFound {
		if got.Error == nil {
			t.Fatalf("intakefs should fail (%q) but gives %s", x.Error, show(got))
		}
		if x.NotFound && !errors.Is(got.goErr, fs.ErrNotExist) {
			t.Errorf("want ENOENT, got %v", got.goErr)
		}
		if !strings.Contains(got.Error.Msg, x.Error) {
			t.Errorf("error %q does not contain %q", got.Error.Msg, x.Error)
		}
		return
	}
	if got.Error != nil {
		t.Fatalf("intakefs fails: %s", got.Error.Msg)
	}
	for k, v := range x.Args {
		if canon(expectEncode(v)) != canon(got.Args[k]) {
			t.Errorf("args[%s] = %s, want %s", k, canon(got.Args[k]), canon(expectEncode(v)))
		}
	}
	for k, v := range x.Metadata {
		if canon(expectEncode(v)) != canon(got.Metadata[k]) {
			t.Errorf("metadata[%s] = %s, want %s", k, canon(got.Metadata[k]), canon(expectEncode(v)))
		}
	}
	for k, v := range x.Params {
		if canon(expectEncode(v)) != canon(got.Params[k]) {
			t.Errorf("params[%s] = %s, want %s", k, canon(got.Params[k]), canon(expectEncode(v)))
		}
	}
	if x.Listing != nil {
		var names []string
		for _, e := range got.Listing {
			s := e[0].(string)
			if e[1] == true {
				s += "/"
			}
			names = append(names, s)
		}
		if !reflect.DeepEqual(names, x.Listing) {
			t.Errorf("listing %q, want %q", names, x.Listing)
		}
	}
}

// expectEncode turns a YAML-written expectation into the encoding: ints
// stay ints, floats become {$float}, and maps already written in the
// encoding ({$tuple: ...}) are kept.
func expectEncode(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case float64:
		return map[string]any{"$float": pyFloatRepr(x)}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = expectEncode(e)
		}
		return out
	case map[string]any:
		if len(x) == 1 {
			for k := range x {
				if strings.HasPrefix(k, "$") {
					if k == "$tuple" {
						return map[string]any{k: expectEncode(x[k])}
					}
					return x
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = expectEncode(e)
		}
		return out
	}
	return v
}
