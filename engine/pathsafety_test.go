package engine

import (
	"context"
	"strings"
	"testing"
)

func TestPathSafety(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"cat.yaml": `
metadata:
  parameters:
    region: {description: r, type: str, default: eu}
sources:
  f:
    driver: csv
    parameters:
      name: {description: n, type: str, default: a}
    args: {urlpath: '{{ CATALOG_DIR }}/data/{{ name }}.csv'}
  upper:
    driver: csv
    parameters:
      name: {description: n, type: str, default: a}
    args: {urlpath: '{{ CATALOG_DIR }}/data/{{ name|upper }}.csv'}
  listed:
    driver: csv
    parameters:
      name: {description: n, type: str, default: a, allowed: [a, ../up]}
    args: {urlpath: '{{ CATALOG_DIR }}/data/{{ name }}.csv'}
  many:
    driver: csv
    parameters:
      name: {description: n, type: str, default: a}
    args: {urlpath: ['{{ CATALOG_DIR }}/data/x.csv', '{{ CATALOG_DIR }}/data/{{ name }}.csv']}
  cached:
    driver: csv
    parameters:
      name: {description: n, type: str, default: a}
    args: {urlpath: 'simplecache::file://{{ CATALOG_DIR }}/data/{{ name }}.csv'}
  remote:
    driver: csv
    parameters:
      name: {description: n, type: str, default: a}
    args: {urlpath: 's3://bucket/data/{{ name }}.csv'}
  byregion:
    driver: csv
    args: {urlpath: '{{ CATALOG_DIR }}/data/{{ region }}/x.csv'}
  other_arg:
    driver: csv
    parameters:
      name: {description: n, type: str, default: a}
    args: {urlpath: '{{ CATALOG_DIR }}/data/x.csv', csv_kwargs: {comment: '{{ name }}'}}
  sub:
    driver: yaml_file_cat
    parameters:
      file: {description: f, type: str, default: sub}
    args: {path: '{{ CATALOG_DIR }}/cats/{{ file }}.yaml'}
`,
		"cats/sub.yaml": "sources: {s: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/../data/{{ region }}.csv'}}}\n",
	})
	f := newFS(t, dir, "cat.yaml")
	ctx := context.Background()
	cases := []struct {
		path string
		bad  string // substring of the refusal; "" when the lookup is fine
	}{
		{"f@name=b", ""},
		{"f@name=sub%2Fb", ""},
		{"f@name=x%2F..%2Fy", ""},
		{"f@name=a..b", ""},
		{"f@name=..%2Fup", "leads outside the directory " + dir + "//data/"},
		{"f@name=x%2F..%2F..%2Fup", "leads outside"},
		{"f@name=%2Fetc%2Fpasswd", ""}, // {DIR}/data//etc/passwd stays inside
		{"upper@name=..%2Fup", "leads outside"},
		{"listed@name=..%2Fup", ""},
		{"listed@name=..%2Fother", "is not one of the allowed values"},
		{"many@name=..%2F..%2Fetc", "leads outside"},
		{"cached@name=..%2Fup", "leads outside"},
		{"remote@name=..%2Fup", ""},
		{"byregion@region=..%2F..", "leads outside"},
		{"other_arg@name=..%2F..", ""}, // not a data location
		{"sub@file=..%2Fcat", "leads outside"},
		{"sub@region=..%2F..%2Fx/s", "leads outside"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			// a refused value fails the lookup, or, for a value that is a
			// default of the catalog (sub@k=v, --param), the listed
			// source's describe.yaml and data
			_, err := f.Describe(ctx, c.path)
			if c.bad == "" {
				if err != nil && isParamErr(err) {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !isParamErr(err) || !strings.Contains(err.Error(), c.bad) {
				t.Fatalf("want a ParamError with %q, got %v", c.bad, err)
			}
		})
	}
}

func TestPathSafetyRootParam(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"cat.yaml": `
metadata:
  parameters:
    base: {description: b, type: str, default: data}
sources:
  s: {driver: csv, args: {urlpath: '{{ base }}/x.csv'}}
`,
	})
	f, err := New(dir+"/cat.yaml", Options{Cwd: dir, RootParams: map[string]string{"base": "../elsewhere"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	if _, err := f.Describe(context.Background(), "s"); err == nil || !strings.Contains(err.Error(), "leads outside") {
		t.Fatalf("--param base=../elsewhere: %v", err)
	}
	if _, err := f.Describe(context.Background(), "s@base=fine"); err != nil {
		t.Fatalf("s@base=fine: %v", err)
	}
}
