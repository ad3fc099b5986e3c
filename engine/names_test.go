package engine

import (
	"reflect"
	"strings"
	"testing"
)

func TestEncodeName(t *testing.T) {
	for in, want := range map[string]string{
		"plain": "plain", "with space": "with space", "a/b": "a%2Fb", "a@b": "a%40b", "100%": "100%25",
		".": "%2E", "..": "%2E%2E", ".hidden": ".hidden", "naïve": "naïve", "a.b.c": "a.b.c",
	} {
		if got := EncodeName(in); got != want {
			t.Errorf("EncodeName(%q) = %q, want %q", in, got, want)
		}
		back, err := Unescape(EncodeName(in))
		if err != nil || back != in {
			t.Errorf("round trip %q: %q %v", in, back, err)
		}
	}
}

func TestParseName(t *testing.T) {
	cases := []struct {
		in   string
		name string
		kvs  []KV
		err  bool
	}{
		{in: "src@k=v.csv", name: "src", kvs: []KV{{"k", "v.csv"}}},
		{in: "src@version=1.2.csv", name: "src", kvs: []KV{{"version", "1.2.csv"}}},
		{in: "a%40b@k=x%40y%2Fz%3Dw%25", name: "a@b", kvs: []KV{{"k", "x@y/z=w%"}}},
		{in: "s@a=1@b=", name: "s", kvs: []KV{{"a", "1"}, {"b", ""}}},
		{in: "s@a=x=y", name: "s", kvs: []KV{{"a", "x=y"}}},
		{in: "s@=1", err: true},
		{in: "s@novalue", err: true},
		{in: "s@a=%4", err: true},
	}
	for _, c := range cases {
		pn, err := ParseName(c.in)
		if c.err {
			if err == nil {
				t.Errorf("%q: no error", c.in)
			}
			continue
		}
		if err != nil || pn.Name != c.name || !reflect.DeepEqual(pn.KVs, c.kvs) {
			t.Errorf("%q: got %q %v %v", c.in, pn.Name, pn.KVs, err)
		}
	}
}

// FuzzNameGrammar: every string encodes to a file name that decodes back;
// every parsable name formats to a name that parses to the same name and
// values (with or without an extension), and formatting is stable:
// parse -> format -> parse -> format gives the same text.
func FuzzNameGrammar(f *testing.F) {
	for _, s := range []string{"src@k=v.csv", "a%40b@k=x%2Fy", "s@a=1@b=2.json", "x@@", "%2E%2E@k=..", "s@k=v@k=w",
		"ver@version=1.2.csv", "s@k=x%2Ecsv", "s@a=x=y", "s@=1", "naïve@k=é", "%25@%25=%25", ".hidden@k=.", "s@k=%00", "s@k=a%2Fb%3Dc%40d",
		"", ".", "..", "a/b", "s@k=v.", "s@k=.csv", "sub@bucket=prod", "s@k=v@k2=v2@k3=v3.parquet"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := EncodeName(s)
		if strings.ContainsAny(enc, "/\x00@") || enc == "." || enc == ".." {
			t.Fatalf("EncodeName(%q) = %q is not a file name", s, enc)
		}
		if back, err := Unescape(enc); err != nil || back != s {
			t.Fatalf("EncodeName(%q) = %q decodes to %q, %v", s, enc, back, err)
		}
		pn, err := ParseName(s)
		if err != nil {
			return
		}
		for _, ext := range []string{"", "csv"} {
			formatted := FormatName(pn.Name, pn.KVs, ext)
			if strings.ContainsAny(formatted, "/\x00") || formatted == "." || formatted == ".." {
				t.Fatalf("%q formats as %q, not a file name", s, formatted)
			}
			pn2, err := ParseName(formatted)
			if err != nil {
				t.Fatalf("%q formats as %q, which does not parse: %v", s, formatted, err)
			}
			wantName := pn.Name
			want := append([]KV{}, pn.KVs...)
			if ext != "" {
				if len(want) == 0 {
					wantName += "." + ext
				} else {
					want[len(want)-1].Value += "." + ext
					// the extension is split off the raw value
					raw := pn2.RawLast
					if !strings.HasSuffix(raw, "."+ext) {
						t.Fatalf("%q: raw last value %q lacks .%s", formatted, raw, ext)
					}
					if v, err := Unescape(strings.TrimSuffix(raw, "."+ext)); err != nil || v != pn.KVs[len(pn.KVs)-1].Value {
						t.Fatalf("%q: value without the extension is %q, want %q", formatted, v, pn.KVs[len(pn.KVs)-1].Value)
					}
				}
			}
			if pn2.Name != wantName || !reflect.DeepEqual(nilIfEmpty(pn2.KVs), nilIfEmpty(want)) {
				t.Fatalf("%q -> %q -> %q %v, want %q %v", s, formatted, pn2.Name, pn2.KVs, wantName, want)
			}
			if ext == "" {
				if again := FormatName(pn2.Name, pn2.KVs, ""); again != formatted {
					t.Fatalf("format is not stable: %q -> %q -> %q", s, formatted, again)
				}
			}
		}
	})
}

func nilIfEmpty(k []KV) []KV {
	if len(k) == 0 {
		return []KV{}
	}
	return k
}
