package itest

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestPandas reads mounted files and their originals with pandas.
func TestPandas(t *testing.T) {
	needVega(t)
	needPython(t)
	d := mount(t, demoCatalog)
	script, _ := filepath.Abs("testdata/pandas_compare.py")
	for _, c := range []struct {
		kind, mounted, original string
	}{
		{"csv", "seattle_weather.csv", "data/seattle-weather.csv"},
		{"csv", "seattle_weather_parts.csv", "data/seattle-weather.csv"}, // the parts are cut from it
		{"csv", "stocks.csv", "data/stocks.csv"},
		{"csv", "flights/routes.csv", "data/flights-airport.csv"},
		{"json", "cars.json", "data/cars.json"},
		{"json", "flights/flights@size=5k.json", "data/flights-5k.json"},
	} {
		t.Run(strings.ReplaceAll(c.mounted, "/", "_"), func(t *testing.T) {
			r := run(t, toolTimeout, "", pythonBin, script, c.kind, d.path(c.mounted), vega(c.original))
			if r.err != nil {
				t.Fatalf("pandas on %s: %v\n%s%s", c.mounted, r.err, r.stdout, r.stderr)
			}
			var got struct {
				MountedShape  []int    `json:"mounted_shape"`
				OriginalShape []int    `json:"original_shape"`
				MountedCols   []string `json:"mounted_columns"`
				OriginalCols  []string `json:"original_columns"`
				Equal         bool     `json:"equal"`
			}
			if err := json.Unmarshal([]byte(lastLine(r.stdout)), &got); err != nil {
				t.Fatalf("pandas output %q: %v", r.stdout, err)
			}
			t.Logf("%s: shape %v, original %v", c.mounted, got.MountedShape, got.OriginalShape)
			if !got.Equal {
				t.Errorf("pandas: %s (shape %v, columns %q) != %s (shape %v, columns %q)",
					c.mounted, got.MountedShape, got.MountedCols, c.original, got.OriginalShape, got.OriginalCols)
			}
		})
	}
}

// TestDuckDB queries mounted files and their originals with DuckDB (node).
func TestDuckDB(t *testing.T) {
	needVega(t)
	needNode(t)
	d := mount(t, demoCatalog)
	script := filepath.Join(repoRoot, "scripts", "node", "compare.mjs")
	for _, c := range []struct{ mounted, original string }{
		{"seattle_weather.csv", "data/seattle-weather.csv"},
		{"seattle_weather_parts.csv", "data/seattle-weather.csv"},
		{"airports.csv", "data/airports.csv"},
		{"flights_3m.parquet", "data/flights-3m.parquet"},
		{"cars.json", "data/cars.json"},
		{"flights/flights@size=10k.json", "data/flights-10k.json"},
	} {
		t.Run(strings.ReplaceAll(c.mounted, "/", "_"), func(t *testing.T) {
			r := run(t, toolTimeout, "", "node", script, d.path(c.mounted), vega(c.original))
			switch {
			case r.exitCode == 0:
				t.Log(lastLine(r.stdout))
			case r.exitCode == 1:
				t.Errorf("DuckDB sees %s and %s differently:\n%s", c.mounted, c.original, r.stdout)
			default:
				t.Errorf("DuckDB on %s: %v\n%s%s", c.mounted, r.err, r.stdout, r.stderr)
			}
		})
	}
}

// TestIntakeDescribe opens each mounted describe.yaml with Intake and
// compares it with the same source in the original catalog: its arguments
// as rendered, its metadata, and what it reads.
func TestIntakeDescribe(t *testing.T) {
	needVega(t)
	needPython(t)
	d := mount(t, demoCatalog)
	script, _ := filepath.Abs("testdata/intake_compare.py")
	type tc struct {
		entry  string            // the source in the original catalog
		dir    string            // its directory in the mount
		params map[string]string // parameters set in the path
	}
	var cases []tc
	for _, f := range demoFiles {
		cases = append(cases, tc{f.source, f.source, nil})
	}
	cases = append(cases,
		tc{"flights/flights", "flights/flights@size=5k", map[string]string{"size": "5k"}},
		tc{"flights/flights", "flights/flights@size=200k", map[string]string{"size": "200k"}},
		tc{"cars", "cars@json_encoding=latin-1", map[string]string{"json_encoding": "latin-1"}},
	)
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.dir, "/", "_"), func(t *testing.T) {
			params, _ := json.Marshal(c.params)
			if c.params == nil {
				params = []byte("{}")
			}
			r := run(t, toolTimeout, "", pythonBin, script, demoCatalog, c.entry, string(params),
				d.path(c.dir+"/describe.yaml"), d.path(c.dir+"/metadata.json"))
			if r.err != nil {
				t.Fatalf("intake_compare.py %s: %v\n%s%s", c.dir, r.err, r.stdout, tail(r.stderr, 30))
			}
			var got struct {
				Checks []struct {
					Name     string `json:"name"`
					OK       bool   `json:"ok"`
					Mounted  any    `json:"mounted"`
					Original any    `json:"original"`
				} `json:"checks"`
			}
			if err := json.Unmarshal([]byte(lastLine(r.stdout)), &got); err != nil {
				t.Fatalf("intake_compare.py output %q: %v", r.stdout, err)
			}
			for _, ch := range got.Checks {
				if !ch.OK {
					m, _ := json.Marshal(ch.Mounted)
					o, _ := json.Marshal(ch.Original)
					t.Errorf("%s: %s\n  mounted:  %s\n  original: %s", c.dir, ch.Name, m, o)
				}
			}
			if t.Failed() {
				t.Logf("%s/describe.yaml:\n%s", c.dir, readFile(t, d.path(c.dir+"/describe.yaml")))
			}
		})
	}
	// The catalog's own describe.yaml opens in Intake too: a catalog with
	// the original's name, description and metadata, and no sources of its
	// own (they are the files beside it).
	t.Run(".catalog", func(t *testing.T) {
		const py = `import intake, json, sys
a = intake.open_catalog(sys.argv[1]); b = intake.open_catalog(sys.argv[2])
print(json.dumps({"same": [a.name == b.name, a.description == b.description, a.metadata.get("origin") == b.metadata.get("origin")], "sources": list(b)}))`
		r := run(t, toolTimeout, "", pythonBin, "-c", py, demoCatalog, d.path(".catalog/describe.yaml"))
		if r.err != nil {
			t.Fatalf("Intake cannot open .catalog/describe.yaml: %v\n%s", r.err, tail(r.stderr, 20))
		}
		if got := lastLine(r.stdout); got != `{"same": [true, true, true], "sources": []}` {
			t.Errorf("Intake reads .catalog/describe.yaml as %s", got)
		}
	})
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
