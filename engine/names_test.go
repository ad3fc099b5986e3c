package engine

import (
	"reflect"
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

// FuzzNameGrammar: any parsable name formats back to a name that parses
// to the same thing.
func FuzzNameGrammar(f *testing.F) {
	for _, s := range []string{"src@k=v.csv", "a%40b@k=x%2Fy", "s@a=1@b=2.json", "x@@", "%2E%2E@k=..", "s@k=v@k=w"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pn, err := ParseName(s)
		if err != nil {
			return
		}
		again := FormatName(pn.Name, pn.KVs, "")
		pn2, err := ParseName(again + "@z=1")
		if err != nil {
			t.Fatalf("%q formatted as %q which does not parse: %v", s, again, err)
		}
		if pn2.Name != pn.Name || !reflect.DeepEqual(pn2.KVs[:len(pn2.KVs)-1], nilIfEmpty(pn.KVs)) {
			t.Fatalf("%q -> %q -> %q %v", s, again, pn2.Name, pn2.KVs)
		}
	})
}

func nilIfEmpty(k []KV) []KV {
	if len(k) == 0 {
		return []KV{}
	}
	return k
}
