package engine

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Loader reads catalog files and keeps them, re-reading a file when its
// size or mtime changes (Intake reloads changed catalogs too). A check
// costs one stat and happens at most once per RecheckInterval per path.
type Loader struct {
	// Cwd is where relative catalog paths resolve (SPEC §1).
	Cwd             string
	RecheckInterval time.Duration
	// Log gets each problem once per load of a file.
	Log *slog.Logger

	mu sync.Mutex // guards files; never held while reading a file
	// files caches parsed single files by absolute path.
	files map[string]*loadedFile
	// merged caches flattened catalogs by name and file list; one is
	// reused while every file in it is the same load.
	merged map[string]*mergedCat
}

type mergedCat struct {
	parts []*Catalog
	cat   *Catalog
}

type loadedFile struct {
	cat     *Catalog
	err     error
	size    int64
	mtime   time.Time
	checked time.Time
}

// NewLoader makes a loader resolving relative paths against cwd.
func NewLoader(cwd string) *Loader {
	return &Loader{Cwd: cwd, RecheckInterval: time.Second, files: map[string]*loadedFile{}, merged: map[string]*mergedCat{}}
}

func (l *Loader) abs(p string) string {
	p = strings.TrimPrefix(p, "file://")
	if !filepath.IsAbs(p) {
		p = filepath.Join(l.Cwd, p)
	}
	return filepath.Clean(p)
}

// Open loads a catalog given as a YAML file, a directory of YAML files or
// a glob of them. A directory or glob is flattened into one catalog, as
// Intake's YAMLFilesCatalog does.
func (l *Loader) Open(path string) (*Catalog, error) {
	p := l.abs(path)
	if hasGlobMeta(p) {
		files, err := filepath.Glob(p)
		if err != nil {
			return nil, &CatalogFileError{path, fmt.Errorf("%s: bad glob: %v", path, err)}
		}
		return l.openMany(path, files, fmt.Sprintf("Catalog generated from all files found in %s", path))
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, &CatalogFileError{path, fmt.Errorf("catalog %s: %w", path, unwrapOS(err))}
	}
	if fi.IsDir() {
		var files []string
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, &CatalogFileError{path, fmt.Errorf("catalog %s: %w", path, unwrapOS(err))}
		}
		for _, e := range ents {
			n := e.Name()
			if !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
				files = append(files, filepath.Join(p, n))
			}
		}
		return l.openMany(path, files, fmt.Sprintf("Catalog generated from all files found in %s", path))
	}
	return l.openFile(p)
}

// OpenList loads a list of files as one flattened catalog.
func (l *Loader) OpenList(paths []string) (*Catalog, error) {
	var files []string
	for _, p := range paths {
		files = append(files, l.abs(p))
	}
	return l.openMany(fmt.Sprintf("%d files", len(files)), files, fmt.Sprintf("Catalog generated from %d files", len(files)))
}

func (l *Loader) openMany(name string, files []string, desc string) (*Catalog, error) {
	sort.Strings(files)
	parts := make([]*Catalog, len(files))
	errs := make([]error, len(files))
	for i, f := range files {
		parts[i], errs[i] = l.openFile(f)
	}
	key := name + "\x00" + strings.Join(files, "\x00")
	l.mu.Lock()
	if m := l.merged[key]; m != nil && samePointers(m.parts, parts) {
		l.mu.Unlock()
		return m.cat, nil
	}
	l.mu.Unlock()
	merged := &Catalog{Name: name, Description: desc, Path: name, Metadata: map[string]any{}, byName: map[string]*Entry{}, Gen: loadGen.Add(1)}
	params := map[string]int{}
	for i, f := range files {
		c, err := parts[i], errs[i]
		if err != nil {
			merged.Errors = append(merged.Errors, &LoadError{File: f, Msg: err.Error()})
			continue
		}
		merged.Files = append(merged.Files, f)
		merged.Errors = append(merged.Errors, c.Errors...)
		for _, p := range c.Params {
			if i, ok := params[p.Name]; ok {
				merged.Params[i] = p
			} else {
				params[p.Name] = len(merged.Params)
				merged.Params = append(merged.Params, p)
			}
		}
		for _, e := range c.Entries {
			if !merged.addEntry(e) {
				prev := merged.byName[e.Name]
				merged.Errors = append(merged.Errors, &LoadError{File: e.File, Line: e.Line, Entry: e.Name,
					Msg: fmt.Sprintf("conflicting names when flattening multiple catalogs: also defined at %s:%d; this one is ignored", prev.File, prev.Line)})
			}
		}
	}
	merged.sortEntries()
	l.mu.Lock()
	if len(l.merged) > 1000 {
		l.merged = map[string]*mergedCat{}
	}
	l.merged[key] = &mergedCat{parts: parts, cat: merged}
	l.mu.Unlock()
	return merged, nil
}

func samePointers(a, b []*Catalog) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (l *Loader) openFile(p string) (*Catalog, error) {
	now := time.Now()
	l.mu.Lock()
	lf := l.files[p]
	if lf != nil && now.Sub(lf.checked) < l.RecheckInterval {
		l.mu.Unlock()
		return lf.cat, lf.err
	}
	l.mu.Unlock()

	fi, statErr := os.Stat(p)
	if lf != nil && statErr == nil && fi.Size() == lf.size && fi.ModTime().Equal(lf.mtime) {
		l.mu.Lock()
		lf.checked = now
		l.mu.Unlock()
		return lf.cat, lf.err
	}
	nlf := &loadedFile{checked: now}
	if statErr != nil {
		nlf.err = &CatalogFileError{p, fmt.Errorf("catalog %s: %w", p, unwrapOS(statErr))}
	} else {
		nlf.size, nlf.mtime = fi.Size(), fi.ModTime()
		text, err := os.ReadFile(p)
		if err != nil {
			nlf.err = &CatalogFileError{p, fmt.Errorf("catalog %s: %w", p, unwrapOS(err))}
		} else {
			text = []byte(strings.ReplaceAll(string(text), "!template ", ""))
			nlf.cat, nlf.err = parseCatalogYAML(p, filepath.Dir(p), text)
			if nlf.cat != nil && nlf.cat.Name == "" {
				nlf.cat.Name = nameFromPath(p)
			}
		}
	}
	if l.Log != nil {
		if nlf.err != nil {
			l.Log.Warn("catalog not loaded", "file", p, "reason", nlf.err.Error())
		} else {
			for _, e := range nlf.cat.Errors {
				l.Log.Warn("catalog entry not loaded", "file", e.File, "line", e.Line, "source", e.Entry, "reason", e.Msg)
			}
		}
	}
	l.mu.Lock()
	l.files[p] = nlf
	l.mu.Unlock()
	return nlf.cat, nlf.err
}

// nameFromPath is Intake's name_from_path: the file's stem, or its
// directory's name for catalog.yaml, with dots made underscores.
func nameFromPath(p string) string {
	base := filepath.Base(p)
	name := strings.TrimSuffix(base, filepath.Ext(base))
	if name == "catalog" {
		name = filepath.Base(filepath.Dir(p))
	}
	return strings.ReplaceAll(name, ".", "_")
}

func hasGlobMeta(p string) bool { return strings.ContainsAny(p, "*?[") }

// unwrapOS keeps os errors matchable (errors.Is(err, fs.ErrNotExist))
// while dropping Go's "stat"/"open" operation prefix.
func unwrapOS(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
