package engine

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"gopkg.in/yaml.v3"
)

// Catalog is one loaded catalog: a YAML file, or the flattened union of a
// directory or glob of them (as Intake's YAMLFilesCatalog builds it).
type Catalog struct {
	Name        string
	Description string
	Metadata    map[string]any
	// Params are the catalog-level user parameters (metadata.parameters).
	Params []*Param
	// Entries are sorted by name; names are unique.
	Entries []*Entry
	// Errors are the problems found while loading; the entries they
	// concern are left out, everything else is served.
	Errors []*LoadError
	// Path is what was opened (a file, a directory or a glob); Files the
	// YAML files read.
	Path  string
	Files []string
	// Dir is CATALOG_DIR for a single file.
	Dir string
	// StorageOptions are those the catalog was loaded with (remote).
	StorageOptions map[string]any
	// Gen is unique to each load: generated files' inode numbers carry
	// it, so an edited catalog never shows the old text under an inode the
	// kernel still holds.
	Gen uint64
	// Loaded is when this load was made: a catalog directory shows it as
	// its mtime (see Versioned).
	Loaded time.Time

	byName map[string]*Entry
}

// Entry is one source (or nested catalog) of a catalog.
type Entry struct {
	Name         string
	Description  string
	Driver       string // canonical short name, e.g. "csv", "yaml_file_cat"
	DriverRaw    any    // as written in the catalog
	DirectAccess string
	Args         map[string]any
	Metadata     map[string]any
	Cache        []any
	// Params are the entry's own parameters, in declaration order.
	Params     []*Param
	CatalogDir string
	File       string
	Line       int
	// Err is a problem that makes the entry unusable but still listed.
	Err error
	// Gen is the Gen of the file load the entry came from.
	Gen uint64
	// CatalogOptions are the storage_options of the remote catalog file
	// the entry came from: Intake passes them to sources whose args use
	// CATALOG_DIR and name no storage_options of their own.
	CatalogOptions map[string]any
}

var loadGen atomic.Uint64

// IsCatalog reports whether the entry is a nested catalog.
func (e *Entry) IsCatalog() bool {
	return e.Driver == "yaml_file_cat" || e.Driver == "yaml_files_cat"
}

// Lookup finds an entry by name.
func (c *Catalog) Lookup(name string) *Entry { return c.byName[name] }

// LoadError is a problem at a place in a catalog file.
type LoadError struct {
	File  string
	Line  int
	Entry string
	Msg   string
}

func (e *LoadError) Error() string {
	if e.Line == 0 && e.Entry == "" && strings.HasPrefix(e.Msg, e.File+": ") {
		return e.Msg // a file's own error names it already
	}
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Entry != "" {
		fmt.Fprintf(&b, "source %q: ", e.Entry)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// CatalogFileError is a catalog file that could not be read or parsed at
// all.
type CatalogFileError struct {
	Path string
	Err  error
}

func (e *CatalogFileError) Error() string { return e.Err.Error() }
func (e *CatalogFileError) Unwrap() error { return e.Err }

// driverAliases maps class paths and alternative names onto the short
// names intakefs reasons about.
var driverAliases = map[string]string{
	"intake.catalog.local.YAMLFileCatalog":         "yaml_file_cat",
	"intake.catalog.local.YAMLFilesCatalog":        "yaml_files_cat",
	"yaml_file":                                    "yaml_file_cat",
	"yaml_files":                                   "yaml_files_cat",
	"intake.source.csv.CSVSource":                  "csv",
	"intake.source.textfiles.TextFilesSource":      "textfiles",
	"intake.source.jsonfiles.JSONFileSource":       "json",
	"intake.source.jsonfiles.JSONLinesFileSource":  "jsonl",
	"intake.source.npy.NPySource":                  "numpy",
	"intake.source.zarr.ZarrArraySource":           "ndzarr",
	"intake_parquet.source.ParquetSource":          "parquet",
	"intake_xarray.netcdf.NetCDFSource":            "netcdf",
	"intake_xarray.xzarr.ZarrSource":               "zarr",
	"intake_xarray.opendap.OpenDapSource":          "opendap",
	"intake_xarray.raster.RasterIOSource":          "rasterio",
	"intake_xarray.image.ImageSource":              "xarray_image",
	"intake.source.derived.AliasSource":            "alias",
	"intake_sql.intake_sql.SQLSource":              "sql",
	"intake_geopandas.geopandas.ShapefileSource":   "shapefile",
	"intake_geopandas.geopandas.GeoJSONSource":     "geojson",
	"intake_geopandas.geopandas.GeoParquetSource":  "geoparquet",
	"intake.source.textfiles.TextFilesSource:text": "textfiles",
}

// canonicalDriver reduces the four driver forms to one short name: a name,
// a class path, a list (the first is used, as Intake does) or a dict of
// named drivers (the first name, in file order).
func canonicalDriver(raw any, dictOrder []string) string {
	switch d := raw.(type) {
	case string:
		if a, ok := driverAliases[d]; ok {
			return a
		}
		return d
	case []any:
		if len(d) > 0 {
			return canonicalDriver(d[0], nil)
		}
	case map[string]any:
		if len(dictOrder) > 0 {
			if spec, ok := d[dictOrder[0]].(map[string]any); ok {
				return canonicalDriver(spec["class"], nil)
			}
		}
	}
	return ""
}

// parseCatalogYAML builds a catalog from one file's text. Problems with
// single entries are recorded and those entries left out; only text that
// is not a YAML mapping fails the whole file.
func parseCatalogYAML(file, dir string, text []byte) (*Catalog, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return nil, &CatalogFileError{file, fmt.Errorf("%s: %v", file, cleanYAMLErr(err))}
	}
	cat := &Catalog{Path: file, Files: []string{file}, Dir: dir, Metadata: map[string]any{}, byName: map[string]*Entry{}, Gen: loadGen.Add(1), Loaded: time.Now()}
	if len(doc.Content) == 0 {
		return nil, &CatalogFileError{file, fmt.Errorf("%s: no YAML data in file", file)}
	}
	root := doc.Content[0]
	if err := checkAliases(root); err != nil {
		return nil, &CatalogFileError{file, fmt.Errorf("%s: %v", file, err)}
	}
	if root.Kind != yaml.MappingNode {
		return nil, &CatalogFileError{file, fmt.Errorf("%s:%d: catalog must be a dictionary, not %s", file, root.Line, kindName(root))}
	}
	errf := func(n *yaml.Node, entry, format string, a ...any) {
		line := 0
		if n != nil {
			line = n.Line
		}
		cat.Errors = append(cat.Errors, &LoadError{File: file, Line: line, Entry: entry, Msg: fmt.Sprintf(format, a...)})
	}
	// Intake refuses a whole file with a duplicate key. We refuse only
	// the part that holds it, since which of the two was meant is unknown:
	// the file at the top level, else the entry (both copies of a
	// duplicated source name), else the metadata.
	if dup := duplicateKey(root); dup != nil {
		return nil, &CatalogFileError{file, fmt.Errorf("%s:%d: duplicate key %q", file, dup.Line, dup.Value)}
	}
	var sourcesNode *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "metadata":
			if dup := findDuplicateKey(v); dup != nil {
				errf(dup, "", "duplicate key %q in metadata: metadata ignored", dup.Value)
				continue
			}
			if v.Kind != yaml.MappingNode {
				errf(v, "", "value of key 'metadata' must be a dictionary")
				continue
			}
			md, _ := nodeValue(v).(map[string]any)
			cat.Metadata = md
			if pn := mapGet(v, "parameters"); pn != nil {
				cat.Params = parseParams(pn, file, "", errf, false)
			}
		case "name":
			cat.Name = scalarString(v)
		case "description":
			cat.Description = scalarString(v)
		case "sources":
			sourcesNode = v
		case "plugins":
			// Accepted and ignored: there is no Python to import here.
		}
	}
	if sourcesNode == nil {
		errf(root, "", "missing key 'sources'")
	} else if sourcesNode.Kind != yaml.MappingNode {
		errf(sourcesNode, "", "value of key 'sources' must be a dictionary, not %s", kindName(sourcesNode))
	} else {
		dupNames := map[string]bool{}
		seen := map[string]bool{}
		for i := 0; i+1 < len(sourcesNode.Content); i += 2 {
			k := sourcesNode.Content[i]
			if seen[k.Value] {
				dupNames[k.Value] = true
				errf(k, k.Value, "duplicate key %q: both definitions ignored", k.Value)
			}
			seen[k.Value] = true
		}
		for i := 0; i+1 < len(sourcesNode.Content); i += 2 {
			k, v := sourcesNode.Content[i], sourcesNode.Content[i+1]
			if dupNames[k.Value] {
				continue
			}
			if dup := findDuplicateKey(v); dup != nil {
				errf(dup, k.Value, "duplicate key %q", dup.Value)
				continue
			}
			if k.Kind != yaml.ScalarNode || k.Tag == "!!null" {
				errf(k, "", "key '%s' must be a string", k.Value)
				continue
			}
			e := parseEntry(k, v, file, dir, errf)
			if e != nil {
				e.Gen = cat.Gen
				cat.addEntry(e)
			}
		}
	}
	cat.sortEntries()
	return cat, nil
}

func (c *Catalog) addEntry(e *Entry) bool {
	if _, dup := c.byName[e.Name]; dup {
		return false
	}
	c.byName[e.Name] = e
	c.Entries = append(c.Entries, e)
	return true
}

func (c *Catalog) sortEntries() {
	sort.Slice(c.Entries, func(i, j int) bool { return c.Entries[i].Name < c.Entries[j].Name })
}

type errFunc func(n *yaml.Node, entry, format string, a ...any)

func parseEntry(key, v *yaml.Node, file, dir string, errf errFunc) *Entry {
	name := key.Value
	if v.Kind != yaml.MappingNode {
		errf(v, name, "value must be a dictionary, not %s", kindName(v))
		return nil
	}
	e := &Entry{Name: name, File: file, Line: key.Line, CatalogDir: dir, DirectAccess: "forbid",
		Args: map[string]any{}, Metadata: map[string]any{}}
	if v2 := mapGet(v, "remote"); v2 != nil && nodeValue(v2) == true {
		errf(v2, name, "remote (server) entries are not supported")
		return nil
	}
	ok := true
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		switch k.Value {
		case "description":
			if val.Kind != yaml.ScalarNode {
				errf(val, name, "value of 'description' is not expected type 'str'")
				ok = false
				continue
			}
			e.Description = val.Value
		case "driver":
			e.DriverRaw = nodeValue(val)
			var order []string
			if val.Kind == yaml.MappingNode {
				for j := 0; j+1 < len(val.Content); j += 2 {
					order = append(order, val.Content[j].Value)
				}
			}
			e.Driver = canonicalDriver(e.DriverRaw, order)
			if e.Driver == "" {
				errf(val, name, "driver %s is not a name, class path, list or dict of drivers", pyRepr(e.DriverRaw))
				ok = false
			}
		case "direct_access":
			s := scalarString(val)
			if s != "forbid" && s != "allow" && s != "force" {
				errf(val, name, "value '%s' is invalid (choose from ['forbid', 'allow', 'force'])", val.Value)
				ok = false
				continue
			}
			e.DirectAccess = s
		case "args":
			m, isMap := nodeValue(val).(map[string]any)
			if !isMap && val.Tag != "!!null" {
				errf(val, name, "value of 'args' is %s, not a dictionary", kindName(val))
				ok = false
				continue
			}
			if m != nil {
				e.Args = m
			}
		case "metadata":
			m, isMap := nodeValue(val).(map[string]any)
			if !isMap && val.Tag != "!!null" {
				errf(val, name, "value of 'metadata' is not expected type 'dict'")
				ok = false
				continue
			}
			if m != nil {
				e.Metadata = m
			}
		case "cache":
			l, isList := nodeValue(val).([]any)
			if !isList {
				errf(val, name, "value of 'cache' is not expected type 'list'")
				ok = false
				continue
			}
			e.Cache = l
		case "parameters":
			if val.Kind == yaml.SequenceNode {
				errf(val, name, "parameters as a list is an obsolete form: use a dictionary")
				ok = false
				continue
			}
			before := 0
			perr := func(n *yaml.Node, entry, format string, a ...any) {
				before++
				errf(n, entry, format, a...)
			}
			e.Params = parseParams(val, file, name, perr, true)
			if before > 0 {
				ok = false
			}
		}
	}
	if e.DriverRaw == nil {
		errf(key, name, "missing required key 'driver'")
		return nil
	}
	if !ok {
		return nil
	}
	return e
}

// parseParams reads a parameters mapping. strict applies the checks
// Intake's parser makes on source parameters (description and type
// required, type one of the known ones); catalog-level parameters are
// taken as they come, as Intake does.
func parseParams(n *yaml.Node, file, entry string, errf errFunc, strict bool) []*Param {
	if n.Kind != yaml.MappingNode {
		errf(n, entry, "value of key 'parameters' must be a dictionary")
		return nil
	}
	var out []*Param
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.MappingNode {
			errf(v, entry, "value of key '%s' must be a dictionary", k.Value)
			continue
		}
		p := &Param{Name: k.Value, File: file, Line: k.Line}
		bad := false
		for j := 0; j+1 < len(v.Content); j += 2 {
			pk, pv := v.Content[j], v.Content[j+1]
			switch pk.Value {
			case "description":
				p.Description = scalarString(pv)
			case "type":
				p.Type = scalarString(pv)
			case "default":
				p.Default = nodeValue(pv)
			case "min":
				p.Min = nodeValue(pv)
			case "max":
				p.Max = nodeValue(pv)
			case "allowed":
				l, ok := nodeValue(pv).([]any)
				if !ok {
					errf(pv, entry, "parameter %q: allowed must be a list", p.Name)
					bad = true
				}
				p.Allowed = l
			}
		}
		if strict {
			if mapGet(v, "description") == nil {
				errf(v, entry, "parameter %q: missing required key 'description'", p.Name)
				bad = true
			}
			if mapGet(v, "type") == nil {
				errf(v, entry, "parameter %q: missing required key 'type'", p.Name)
				bad = true
			}
		}
		if p.Type == "" && mapGet(v, "type") == nil {
			p.Type = pyTypeName(p.Default)
			if p.Type == "NoneType" {
				p.Type = ""
			}
		}
		if p.Type != "" {
			base := p.Type
			if i := strings.IndexByte(base, '['); i >= 0 {
				base = base[:i]
			}
			known := false
			for _, t := range ParamTypes {
				if t == base {
					known = true
				}
			}
			if !known {
				tn := mapGet(v, "type")
				errf(tn, entry, "parameter %q: value '%s' is invalid (choose from %s)", p.Name, p.Type, pyRepr(toAnyList(ParamTypes)))
				bad = true
			}
		}
		if !bad {
			out = append(out, p)
		}
	}
	return out
}

func toAnyList(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

func mapGet(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func scalarString(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return n.Value
	}
	return ""
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a dictionary"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "empty"
		}
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "something else"
}

// duplicateKey finds a repeated key directly in mapping n.
func duplicateKey(n *yaml.Node) *yaml.Node {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if seen[k.Value] {
			return k
		}
		seen[k.Value] = true
	}
	return nil
}

func findDuplicateKey(n *yaml.Node) *yaml.Node {
	switch n.Kind {
	case yaml.MappingNode:
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.ScalarNode {
				if seen[k.Value] {
					return k
				}
				seen[k.Value] = true
			}
			if d := findDuplicateKey(n.Content[i+1]); d != nil {
				return d
			}
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			if d := findDuplicateKey(c); d != nil {
				return d
			}
		}
	}
	return nil
}

// nodeValue converts a YAML node into plain Go values: map[string]any,
// []any, string, int64, float64, bool, time.Time, nil.
func nodeValue(n *yaml.Node) any {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) > 0 {
			return nodeValue(n.Content[0])
		}
		return nil
	case yaml.AliasNode:
		return nodeValue(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				if mv, ok := nodeValue(v).(map[string]any); ok {
					for mk, mval := range mv {
						if _, exists := m[mk]; !exists {
							m[mk] = mval
						}
					}
				}
				continue
			}
			m[k.Value] = nodeValue(v)
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, len(n.Content))
		for i, c := range n.Content {
			l[i] = nodeValue(c)
		}
		return l
	case yaml.ScalarNode:
		// as Intake's PyYAML reads it (YAML 1.1), see yaml11.go
		return resolveScalar11(n)
	}
	return nil
}

// yamlParserLine matches yaml.v3's parser errors, whose line number is
// 0-based (its scanner errors' are 1-based): it gives the line where the
// unfinished construct starts, or the problem's.
var yamlParserLine = regexp.MustCompile(`^line (\d+): (did not find expected (',' or '\]'|',' or '\}'|'-' indicator|<document start>|key|node content))`)

func cleanYAMLErr(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlParserLine.FindStringSubmatchIndex(msg); m != nil {
		n, _ := strconv.Atoi(msg[m[2]:m[3]])
		msg = fmt.Sprintf("line %d: %s", n+1, msg[m[4]:])
	} else if !strings.HasPrefix(msg, "line ") && !strings.HasPrefix(msg, "unmarshal errors") {
		// yaml.v3 leaves the line out when it is the first
		msg = "line 1: " + msg
	}
	return msg
}

// YAML aliases are expanded into copies, so a recursive alias, or a
// "billion laughs" tree of them, would never end; PyYAML shares the
// objects instead. A catalog whose expansion goes past these bounds is
// refused.
const (
	maxYAMLDepth = 200
	maxYAMLNodes = 1_000_000
)

func checkAliases(n *yaml.Node) error {
	count := 0
	var walk func(n *yaml.Node, depth int) error
	walk = func(n *yaml.Node, depth int) error {
		count++
		if depth > maxYAMLDepth {
			return fmt.Errorf("line %d: YAML nested deeper than %d levels (a recursive alias?)", n.Line, maxYAMLDepth)
		}
		if count > maxYAMLNodes {
			return fmt.Errorf("line %d: YAML aliases expand to more than %d values", n.Line, maxYAMLNodes)
		}
		if n.Kind == yaml.AliasNode {
			if n.Alias == nil {
				return nil
			}
			return walk(n.Alias, depth+1)
		}
		for _, c := range n.Content {
			if err := walk(c, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(n, 0)
}
