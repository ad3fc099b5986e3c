package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/intakefs/intakefs/remote"
)

// Loader reads catalog files and keeps them, re-reading a file when its
// size or mtime changes (Intake reloads changed catalogs too). A check
// costs one stat and happens at most once per RecheckInterval per path;
// a remote catalog is checked at most once per RemoteRecheckInterval
// (see openRemote).
type Loader struct {
	// Cwd is where relative catalog paths resolve (SPEC §1).
	Cwd             string
	RecheckInterval time.Duration
	// RemoteRecheckInterval is RecheckInterval for remote catalogs,
	// where a check is a request.
	RemoteRecheckInterval time.Duration
	// Log gets each problem once per load of a file, and each failure
	// of a remote catalog once per episode.
	Log *slog.Logger
	// startup is the root catalog file while New loads it: if it does
	// not load, that is the caller's one-line error, not a log line too
	// (files of a glob or directory root still log theirs). Only New
	// sets it, before anything else uses the Loader.
	startup string
	// Resolver reaches remote catalogs.
	Resolver *Resolver

	// ctx is cancelled by Close, which ends the requests of background
	// checks; bg counts those checks, so that Close can wait for them.
	ctx    context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup

	// mu guards files, merged, remotes and the fields of every remoteCat
	// and the checked field of every loadedFile (the rest of a
	// loadedFile is fixed once it is in files). It is never held while
	// reading a file or making a request.
	mu sync.Mutex
	// files caches parsed single files by absolute path (remote ones by
	// URL and options).
	files map[string]*loadedFile
	// merged caches flattened catalogs by name and file list; one is
	// reused while every file in it is the same load.
	merged map[string]*mergedCat
	// remotes is what Open last gave for each remote catalog URL and
	// options, and the state of its recheck.
	remotes map[string]*remoteCat
	// closed: Close has begun; no background check starts after it.
	closed bool
}

type mergedCat struct {
	parts []*Catalog
	cat   *Catalog
}

type loadedFile struct {
	cat      *Catalog
	err      error
	size     int64
	mtime    time.Time
	identity string // remote files
	checked  time.Time
}

// remoteCat is one remote catalog (a file, a directory or a glob) as Open
// gives it between checks. Guarded by Loader.mu.
type remoteCat struct {
	// cat and err are the outcome Open gives until the next check ends.
	cat *Catalog
	err error
	// loaded: a check has ended, so cat and err hold an outcome.
	loaded bool
	// checked is when the last check ended: the next is due
	// RemoteRecheckInterval later, so a check that took the whole retry
	// budget is not followed straight away by another.
	checked time.Time
	// checking: a check is running; there is at most one per catalog.
	// done is closed when it ends, for the Opens of a catalog never
	// loaded, which have nothing to be given meanwhile.
	checking bool
	done     chan struct{}
	// good: cat is from a check that succeeded, which is what a check
	// that fails for a transient reason leaves in place.
	good bool
	// failing: a failure was logged and no check has succeeded since,
	// so that an outage is one warning, not one per check.
	failing bool
}

// NewLoader makes a loader resolving relative paths against cwd.
func NewLoader(cwd string) *Loader {
	ctx, cancel := context.WithCancel(context.Background())
	return &Loader{Cwd: cwd, RecheckInterval: time.Second, RemoteRecheckInterval: DefaultRemoteRecheck,
		ctx: ctx, cancel: cancel,
		files: map[string]*loadedFile{}, merged: map[string]*mergedCat{}, remotes: map[string]*remoteCat{}}
}

// DefaultRemoteRecheck is how often a remote catalog is checked again, and
// how long a plan of remote data is reused, unless told otherwise.
const DefaultRemoteRecheck = 10 * time.Second

// Close ends the background checks of remote catalogs (their requests are
// cancelled) and waits for them, so that nothing the loader started runs
// after it. Opens after Close still work: a check that is due is made by
// the Open that finds it due, which waits for it.
func (l *Loader) Close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.bg.Wait()
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
//
// opts are the storage_options for a remote catalog (s3://, gs://,
// http(s)://); its sources that build paths from CATALOG_DIR inherit them.
func (l *Loader) Open(path string, opts map[string]any) (*Catalog, error) {
	if isRemote(path) {
		return l.openRemote(path, opts)
	}
	p := l.abs(path)
	if hasGlobMeta(p) {
		files, err := filepath.Glob(p)
		if err != nil {
			return nil, &CatalogFileError{path, fmt.Errorf("%s: bad glob: %v", path, err)}
		}
		return l.openMany(path, files, fmt.Sprintf("Catalog generated from all files found in %s", path), nil)
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
			if !isCatalogFile(n) {
				continue
			}
			// only regular files: a FIFO named x.yaml would block the read
			if fi, err := os.Stat(filepath.Join(p, n)); err == nil && fi.Mode().IsRegular() {
				files = append(files, filepath.Join(p, n))
			}
		}
		return l.openMany(path, files, fmt.Sprintf("Catalog generated from all files found in %s", path), nil)
	}
	return l.openFile(p)
}

// isCatalogFile: the files a directory catalog is made of.
func isCatalogFile(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// openRemote gives the catalog at a remote URL, checking it at most once
// per RemoteRecheckInterval. Between checks, and while one is running,
// Opens get the outcome of the last check without a request. A check of
// a catalog with a good copy runs in the background, the Open that starts
// it being given that copy too: a server may stall a check for the whole
// retry budget, and no lookup should wait for it. Only an Open with
// nothing to be given — the first load, or the next check after a
// failure — waits, and concurrent first loads wait for the same check.
func (l *Loader) openRemote(u string, opts map[string]any) (*Catalog, error) {
	key := u + "\x00" + optionsKey(opts)
	l.mu.Lock()
	rc := l.remotes[key]
	if rc == nil {
		rc = &remoteCat{}
		l.remotes[key] = rc
	}
	for {
		if rc.loaded && (rc.checking || time.Since(rc.checked) < l.RemoteRecheckInterval) {
			cat, err := rc.cat, rc.err
			l.mu.Unlock()
			return cat, err
		}
		if !rc.checking {
			break
		}
		done := rc.done
		l.mu.Unlock()
		<-done
		l.mu.Lock()
	}
	rc.checking, rc.done = true, make(chan struct{})
	if rc.good && !l.closed {
		cat := rc.cat
		l.bg.Add(1) // under mu and only before closed: never races Close's Wait
		l.mu.Unlock()
		go func() {
			defer l.bg.Done()
			l.checkRemote(l.ctx, rc, u, opts)
		}()
		return cat, nil
	}
	l.mu.Unlock()
	return l.checkRemote(context.Background(), rc, u, opts)
}

// checkRemote runs the check rc.checking was set for, records its outcome
// and gives what Open now gives.
func (l *Loader) checkRemote(ctx context.Context, rc *remoteCat, u string, opts map[string]any) (*Catalog, error) {
	cat, err := l.loadRemote(ctx, u, opts)
	shown, reason := remote.RedactURL(u), ""
	if err != nil {
		reason = err.Error()
	}

	l.mu.Lock()
	var logf func() // after the unlock
	switch {
	case err != nil && ctx.Err() != nil:
		// cancelled by Close: says nothing about the catalog; a good
		// copy stays
		if !rc.good {
			rc.cat, rc.err = nil, err
		}
	case err != nil && rc.good && isTransient(err):
		// stale-if-error: a server that is down or slow says nothing
		// about the catalog, so its sources stay listed
		if !rc.failing {
			rc.failing = true
			logf = func() {
				l.Log.Warn("remote catalog not reachable: serving the copy last loaded", "url", shown,
					"reason", reason, "retry_in", l.RemoteRecheckInterval.String())
			}
		}
	case err != nil && cat == nil:
		// a definite answer (gone, denied, no longer a catalog), or a
		// catalog never loaded: as a local file that went bad
		if rc.good {
			rc.failing = true
			// what the file's load did not log already (logLoad)
			if errors.Is(err, remote.ErrNotExist) || errors.Is(err, remote.ErrPermission) {
				logf = func() {
					l.Log.Warn("remote catalog not loaded: its sources are gone from the mount", "url", shown, "reason", reason)
				}
			}
		}
		rc.cat, rc.err, rc.good = nil, err, false
	default:
		// loaded; err is a directory or glob member that could not be
		// reached, already in cat.Errors, on a catalog with no better
		// copy to serve
		if rc.failing {
			rc.failing = false
			logf = func() { l.Log.Info("remote catalog loaded again", "url", shown) }
		}
		rc.cat, rc.err, rc.good = cat, nil, true
	}
	rc.loaded, rc.checked, rc.checking = true, time.Now(), false
	close(rc.done)
	cat, err = rc.cat, rc.err
	l.mu.Unlock()
	if logf != nil && l.Log != nil {
		logf()
	}
	return cat, err
}

// isTransient: a failure that says nothing about the catalog itself, only
// that its server could not be reached or kept failing (timeouts, refused
// connections, 5xx, 429).
func isTransient(err error) bool { return errors.Is(err, remote.ErrUnavailable) }

// loadRemote checks a remote catalog: one metadata request for a file
// (and a read when it changed), a listing for a directory or glob. It may
// give a catalog and an error together: a directory or glob catalog
// without the members that could not be reached, and the first reason.
func (l *Loader) loadRemote(ctx context.Context, u string, opts map[string]any) (*Catalog, error) {
	shown := remote.RedactURL(u)
	fail := func(err error) (*Catalog, error) {
		return nil, &CatalogFileError{shown, fmt.Errorf("catalog %s: %w", shown, err)}
	}
	if l.Resolver == nil {
		return nil, &CatalogFileError{shown, fmt.Errorf("catalog %s: remote catalogs need a resolver", shown)}
	}
	store, ru, err := l.Resolver.Resolve(ctx, u, opts)
	if err != nil {
		return fail(err)
	}
	var infos []remote.ObjectInfo
	if remote.HasGlob(ru) {
		if infos, err = remote.Glob(ctx, store, ru); err != nil {
			return fail(err)
		}
	} else {
		info, err := store.Stat(ctx, ru)
		if err != nil {
			return fail(err)
		}
		if !info.IsDir && !strings.HasSuffix(ru, "/") {
			return l.loadRemoteFile(ctx, store, ru, info, opts)
		}
		ents, err := store.List(ctx, ru)
		if err != nil {
			return fail(err)
		}
		for _, e := range ents {
			if !e.IsDir && isCatalogFile(e.URL) {
				infos = append(infos, e)
			}
		}
	}
	// the listing's infos are the members' identities: no request each
	byURL := map[string]remote.ObjectInfo{}
	var files []string
	for _, in := range infos {
		byURL[in.URL] = in
		files = append(files, in.URL)
	}
	var unreachable error
	cat, _ := l.openMany(shown, files, fmt.Sprintf("Catalog generated from all files found in %s", shown),
		func(f string) (*Catalog, error) {
			c, err := l.loadRemoteFile(ctx, store, f, byURL[f], opts)
			if err != nil && unreachable == nil && isTransient(err) {
				unreachable = err
			}
			return c, err
		})
	return cat, unreachable
}

// maxCatalogSize bounds a remote catalog file read into memory.
const maxCatalogSize = 64 << 20

// loadRemoteFile gives one remote catalog file whose info was just
// fetched, reusing the parse while the object's identity (ETag,
// generation, size+mtime) is unchanged.
func (l *Loader) loadRemoteFile(ctx context.Context, store remote.Store, u string, info remote.ObjectInfo, opts map[string]any) (*Catalog, error) {
	key := "remote\x00" + u + "\x00" + optionsKey(opts)
	shown := remote.RedactURL(u)
	l.mu.Lock()
	lf := l.files[key]
	l.mu.Unlock()
	if lf != nil && info.Identity() == lf.identity {
		return lf.cat, lf.err
	}
	text, err := readAllRemote(ctx, store, u)
	if err != nil && isTransient(err) {
		// not kept: under the same identity the next check must read
		// again, not give this error back
		return nil, &CatalogFileError{shown, fmt.Errorf("catalog %s: %w", shown, err)}
	}
	nlf := &loadedFile{identity: info.Identity(), checked: time.Now()}
	if err != nil {
		nlf.err = &CatalogFileError{shown, fmt.Errorf("catalog %s: %w", shown, err)}
	} else {
		text = []byte(strings.ReplaceAll(string(text), "!template ", ""))
		nlf.cat, nlf.err = parseCatalogYAML(shown, remoteDir(u), text)
		if nlf.cat != nil {
			if nlf.cat.Name == "" {
				nlf.cat.Name = nameFromPath(u)
			}
			nlf.cat.StorageOptions = opts
			for _, e := range nlf.cat.Entries {
				e.CatalogOptions = opts
			}
		}
	}
	l.logLoad(shown, nlf)
	l.mu.Lock()
	l.files[key] = nlf
	l.mu.Unlock()
	return nlf.cat, nlf.err
}

// readRegular reads a catalog file without blocking on a FIFO put in its
// place since the stat, and no more than maxCatalogSize.
func readRegular(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	b, err := io.ReadAll(io.LimitReader(f, maxCatalogSize+1))
	if err == nil && len(b) > maxCatalogSize {
		err = fmt.Errorf("larger than %d MiB: not a catalog?", maxCatalogSize>>20)
	}
	return b, err
}

func readAllRemote(ctx context.Context, s remote.Store, u string) ([]byte, error) {
	rc, err := s.ReadRange(ctx, u, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxCatalogSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxCatalogSize {
		return nil, fmt.Errorf("larger than %d MiB: not a catalog?", maxCatalogSize>>20)
	}
	return b, nil
}

func optionsKey(opts map[string]any) string {
	if len(opts) == 0 {
		return ""
	}
	b, err := json.Marshal(opts)
	if err != nil {
		return fmt.Sprint(opts)
	}
	return string(b)
}

// OpenList loads a list of files as one flattened catalog.
func (l *Loader) OpenList(paths []string, opts map[string]any) (*Catalog, error) {
	var files []string
	for _, p := range paths {
		if isRemote(p) {
			files = append(files, p)
		} else {
			files = append(files, l.abs(p))
		}
	}
	return l.openMany(fmt.Sprintf("%d files", len(files)), files, fmt.Sprintf("Catalog generated from %d files", len(files)),
		func(f string) (*Catalog, error) {
			if isRemote(f) {
				return l.Open(f, opts)
			}
			return l.openFile(f)
		})
}

// openMany flattens files into one catalog; open loads one of them (nil:
// a local file).
func (l *Loader) openMany(name string, files []string, desc string, open func(string) (*Catalog, error)) (*Catalog, error) {
	if open == nil {
		open = l.openFile
	}
	sort.Strings(files)
	parts := make([]*Catalog, len(files))
	errs := make([]error, len(files))
	for i, f := range files {
		parts[i], errs[i] = open(f)
	}
	key := name + "\x00" + strings.Join(files, "\x00")
	l.mu.Lock()
	if m := l.merged[key]; m != nil && samePointers(m.parts, parts) {
		l.mu.Unlock()
		return m.cat, nil
	}
	l.mu.Unlock()
	merged := &Catalog{Name: name, Description: desc, Path: name, Metadata: map[string]any{}, byName: map[string]*Entry{}, Gen: loadGen.Add(1), Loaded: time.Now()}
	if len(files) == 0 {
		// Intake gives an empty catalog too; a typo in a glob should not
		// look like a catalog with nothing in it
		merged.Errors = append(merged.Errors, &LoadError{File: name, Msg: "no catalog file (*.yaml, *.yml) found: the catalog is empty"})
		if l.Log != nil {
			l.Log.Warn("catalog is empty: no catalog file (*.yaml, *.yml) found", "path", name)
		}
	}
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
	if statErr == nil && !fi.Mode().IsRegular() {
		nlf.err = &CatalogFileError{p, fmt.Errorf("catalog %s: not a regular file (%v)", p, fi.Mode().Type())}
	} else if statErr == nil && fi.Size() > maxCatalogSize {
		nlf.err = &CatalogFileError{p, fmt.Errorf("catalog %s: larger than %d MiB: not a catalog?", p, maxCatalogSize>>20)}
	} else if statErr != nil {
		nlf.err = &CatalogFileError{p, fmt.Errorf("catalog %s: %w", p, unwrapOS(statErr))}
	} else {
		nlf.size, nlf.mtime = fi.Size(), fi.ModTime()
		text, err := readRegular(p)
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
	l.logLoad(p, nlf)
	l.mu.Lock()
	l.files[p] = nlf
	l.mu.Unlock()
	return nlf.cat, nlf.err
}

// logLoad reports each problem of a fresh load once.
func (l *Loader) logLoad(p string, lf *loadedFile) {
	if l.Log == nil {
		return
	}
	if lf.err != nil {
		if p != l.startup {
			l.Log.Warn("catalog not loaded", "file", p, "reason", lf.err.Error())
		}
		return
	}
	for _, e := range lf.cat.Errors {
		l.Log.Warn("catalog entry not loaded", "file", e.File, "line", e.Line, "source", e.Entry, "reason", e.Msg)
	}
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
