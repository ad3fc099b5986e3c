package engine

import (
	"reflect"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

func TestEncodeYAMLRoundTrip(t *testing.T) {
	vals := []any{
		map[string]any{"a": "plain", "b": int64(1), "c": 1.5, "d": true, "e": nil, "f": "yes", "g": "1.0",
			"h": "with: colon", "i": "#hash", "j": "multi\nline", "k": []any{"x", int64(2), map[string]any{"p": "q", "r": []any{}}},
			"l": map[string]any{}, "m": "", "n": " lead", "o": "trail ", "p q": "spaced key", "1": "numeric key",
			"u": "ünïcode", "s": "'quote\"", "t": "{{ not a template }}", "w": "- dash", "x": "@at", "y": "%pct", "z": "*star",
		},
		[]any{map[string]any{"a": int64(1), "b": int64(2)}, []any{"nested"}},
	}
	for _, v := range vals {
		out := encodeYAML(v)
		var back any
		if err := yaml.Unmarshal(out, &back); err != nil {
			t.Fatalf("does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(normalize(back), normalize(v)) {
			t.Fatalf("round trip differs:\n%s\ngot  %#v\nwant %#v", out, back, v)
		}
	}
}

func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case int:
		return int64(x)
	}
	return v
}

func FuzzEncodeYAML(f *testing.F) {
	for _, s := range []string{"plain", "yes", "1.0", "a: b", "- x", "", " x", "\t", "ünï", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // YAML text is UTF-8; json.Marshal substitutes U+FFFD
		}
		v := map[string]any{s: s, "list": []any{s}}
		out := encodeYAML(v)
		var back any
		if err := yaml.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q: does not parse: %v\n%s", s, err, out)
		}
		if !reflect.DeepEqual(normalize(back), v) {
			t.Fatalf("%q: round trip %#v", s, back)
		}
	})
}
