package engine

// The differential test of `cache:` blocks (issue 6): every case is a
// source run through Intake 0.6.6's own cache (scripts/intake_cache_diff.py,
// with /usr/bin/python3) and through the engine. What Intake's cache yields
// for the source is what the engine must serve: one file's bytes; several
// files that the driver concatenates (csv: the header once; textfiles:
// plain) compared row by row; a directory's files (parts, archive members,
// a cached tree) by name and bytes. Where Intake fails, the engine must
// fail too (in its own words). Inputs are made at test time with gzip,
// bzip2, xz, tar and zip.
//
// Deliberate differences (Intake 0.6.6 bugs not copied; each case marked
// `deliberate` must serve what Intake gives for the sane case named in
// `as`, and must still differ from Intake's own result):
//   - .bz2 names: Intake names what it decompresses from x.bz2 by cutting
//     three characters ("x.json.bz2" → "x.json."); intakefs cuts ".bz2".
//   - cache keyed by urlpath alone: in one session a second source over the
//     same urlpath (another regex_filter) gets the first one's files.
//   - a block without `type`: Intake's docs make "file" the default, 0.6.6
//     fails (KeyError 'type').
//   - infer on .tar.xz: not in 0.6.6's list (UnboundLocalError 'd');
//     intakefs infers every suffix it knows.
//   - regex_filter is matched against the member's name in the archive, not
//     Intake's cache path ('^sub/' selects sub/... members).
//   - a list urlpath with type compressed: 0.6.6 fails in sanitize_path.
//   - later blocks: Intake downloads every block though the driver uses the
//     first's files, so a later block that fails when run, or that writes
//     where the first wrote (the cache path is an md5 of the basename, regex
//     and source name, whatever the type), fails the source. intakefs reads
//     the first block only (every block's type, depth, decomp and
//     regex_filter are still checked, as Intake fails on them).
//   - type dir `depth`: it bounds what Intake copies; intakefs shows the
//     directory as it is (SPEC §2; its tree nodes have no depth bound).
//   - a list urlpath is served in sorted order (SPEC §2); Intake keeps the
//     list's order.
// And throughout, not per case: Intake lists an archive's directory
// entries among its files; the engine's archives hold regular members only,
// so directories are dropped from Intake's list before comparing.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

type cacheCase struct {
	src string // the source's name
	// entry is the source's YAML (a flow mapping); $D is {{ CATALOG_DIR }}
	entry string
	// deliberate: why intakefs differs from Intake here on purpose; the
	// engine must then serve what Intake gives for the case `as`.
	deliberate string
	as         string
}

var cacheCases = []cacheCase{
	// type: file
	{src: "f_plain", entry: `{driver: csv, args: {urlpath: '$D/d/p0.csv'}, cache: [{argkey: urlpath, type: file}]}`},
	{src: "f_regex", entry: `{driver: csv, args: {urlpath: '$D/d/p0.csv'}, cache: [{argkey: urlpath, type: file, regex: 'd/'}]}`},
	{src: "f_glob", entry: `{driver: csv, args: {urlpath: '$D/d/p*.csv'}, cache: [{argkey: urlpath, type: file}]}`},
	{src: "f_list", entry: `{driver: csv, args: {urlpath: ['$D/d/p0.csv', '$D/d/p1.csv', '$D/d/p2.csv']}, cache: [{argkey: urlpath, type: file}]}`},
	{src: "f_list_unsorted", entry: `{driver: csv, args: {urlpath: ['$D/d/p2.csv', '$D/d/p0.csv', '$D/d/p1.csv']}, cache: [{argkey: urlpath, type: file}]}`,
		deliberate: "a list is served in sorted order (SPEC §2); Intake keeps the list's order", as: "f_list"},
	{src: "f_text", entry: `{driver: textfiles, args: {urlpath: '$D/t/*.txt'}, cache: [{argkey: urlpath, type: file}]}`},
	{src: "f_json", entry: `{driver: json, args: {urlpath: '$D/j/*.json'}, cache: [{argkey: urlpath, type: file}]}`},
	{src: "f_nomatch", entry: `{driver: csv, args: {urlpath: '$D/d/*.nothing'}, cache: [{argkey: urlpath, type: file}]}`},
	{src: "f_missing", entry: `{driver: csv, args: {urlpath: '$D/d/absent.csv'}, cache: [{argkey: urlpath, type: file}]}`},
	{src: "f_notype", entry: `{driver: csv, args: {urlpath: '$D/d/p0.csv'}, cache: [{argkey: urlpath}]}`,
		deliberate: "Intake's docs make type file the default; 0.6.6 fails with KeyError 'type'", as: "f_plain"},

	// type: compressed, decomp given
	{src: "c_zip", entry: `{driver: json, args: {urlpath: '$D/a/a.zip'}, cache: [{argkey: urlpath, type: compressed, decomp: zip}]}`},
	{src: "c_zip_f", entry: `{driver: csv, args: {urlpath: '$D/a/a.zip'}, cache: [{argkey: urlpath, type: compressed, decomp: zip, regex_filter: 'sub/p'}]}`},
	{src: "c_zipname_f", entry: `{driver: csv, args: {urlpath: '$D/a/zipdata.bin'}, cache: [{argkey: urlpath, type: compressed, decomp: zip, regex_filter: 'sub/p'}]}`},
	{src: "c_tgz", entry: `{driver: json, args: {urlpath: '$D/a/a.tgz'}, cache: [{argkey: urlpath, type: compressed, decomp: tgz}]}`},
	{src: "c_tgz_f", entry: `{driver: csv, args: {urlpath: '$D/a/a.tgz'}, cache: [{argkey: urlpath, type: compressed, decomp: tgz, regex_filter: 'p[02]\.csv'}]}`},
	{src: "c_tbz_f", entry: `{driver: csv, args: {urlpath: '$D/a/a.tbz'}, cache: [{argkey: urlpath, type: compressed, decomp: tbz, regex_filter: 'sub/'}]}`},
	{src: "c_tar", entry: `{driver: json, args: {urlpath: '$D/a/a.pkg'}, cache: [{argkey: urlpath, type: compressed, decomp: tar}]}`},
	{src: "c_tar_f", entry: `{driver: csv, args: {urlpath: '$D/a/a.tar'}, cache: [{argkey: urlpath, type: compressed, decomp: tar, regex_filter: '\.csv$'}]}`},
	{src: "c_gz", entry: `{driver: csv, args: {urlpath: '$D/d/p0.gzdata'}, cache: [{argkey: urlpath, type: compressed, decomp: gz}]}`},
	{src: "c_bz", entry: `{driver: csv, args: {urlpath: '$D/d/p0.bzdata'}, cache: [{argkey: urlpath, type: compressed, decomp: bz}]}`},
	{src: "c_wrong", entry: `{driver: csv, args: {urlpath: '$D/a/a.tgz'}, cache: [{argkey: urlpath, type: compressed, decomp: zip}]}`},
	{src: "c_rar", entry: `{driver: csv, args: {urlpath: '$D/a/a.zip'}, cache: [{argkey: urlpath, type: compressed, decomp: rar}]}`},

	// type: compressed, decomp inferred
	{src: "i_zip_f", entry: `{driver: csv, args: {urlpath: '$D/a/a.zip'}, cache: [{argkey: urlpath, type: compressed, regex_filter: 'sub/p'}]}`},
	{src: "i_tgz", entry: `{driver: json, args: {urlpath: '$D/a/a.tgz'}, cache: [{argkey: urlpath, type: compressed, decomp: infer}]}`},
	{src: "i_targz_f", entry: `{driver: csv, args: {urlpath: '$D/a/a.tar.gz'}, cache: [{argkey: urlpath, type: compressed, regex_filter: 'sub/p'}]}`},
	{src: "i_tarbz2_f", entry: `{driver: csv, args: {urlpath: '$D/a/a.tar.bz2'}, cache: [{argkey: urlpath, type: compressed, decomp: infer, regex_filter: 'sub/p'}]}`},
	{src: "i_tbz_f", entry: `{driver: csv, args: {urlpath: '$D/a/a.tbz'}, cache: [{argkey: urlpath, type: compressed, regex_filter: 'sub/p'}]}`},
	{src: "i_tar_f", entry: `{driver: csv, args: {urlpath: '$D/a/a.tar'}, cache: [{argkey: urlpath, type: compressed, regex_filter: 'sub/p'}]}`},
	{src: "i_gz", entry: `{driver: csv, args: {urlpath: '$D/d/p0.csv.gz'}, cache: [{argkey: urlpath, type: compressed}]}`},
	{src: "i_bz", entry: `{driver: csv, args: {urlpath: '$D/d/p0.csv.bz2'}, cache: [{argkey: urlpath, type: compressed}]}`},
	{src: "i_gz_glob", entry: `{driver: json, args: {urlpath: '$D/j/*.json.gz'}, cache: [{argkey: urlpath, type: compressed}]}`},
	{src: "i_bz_glob", entry: `{driver: json, args: {urlpath: '$D/j/*.json.bz2'}, cache: [{argkey: urlpath, type: compressed}]}`,
		deliberate: "the .bz2 suffix bug: Intake cuts three characters (x.json.bz2 -> 'x.json.')", as: "i_gz_glob"},
	{src: "i_txz_f", entry: `{driver: csv, args: {urlpath: '$D/a/a.tar.xz'}, cache: [{argkey: urlpath, type: compressed, regex_filter: 'sub/p'}]}`,
		deliberate: "0.6.6's infer lacks .tar.xz (UnboundLocalError 'd'); intakefs infers it", as: "i_targz_f"},
	{src: "i_anchored", entry: `{driver: csv, args: {urlpath: '$D/a/a.zip'}, cache: [{argkey: urlpath, type: compressed, regex_filter: '^sub/p'}]}`,
		deliberate: "regex_filter is matched against the member's name, not Intake's cache path", as: "i_zip_f"},
	{src: "i_list", entry: `{driver: csv, args: {urlpath: ['$D/a/a.zip']}, cache: [{argkey: urlpath, type: compressed, regex_filter: 'sub/p'}]}`,
		deliberate: "0.6.6's compressed cache fails on a list urlpath (sanitize_path of a list)", as: "i_zip_f"},
	{src: "i_plain", entry: `{driver: csv, args: {urlpath: '$D/d/p0.csv'}, cache: [{argkey: urlpath, type: compressed}]}`},
	{src: "i_nomatch", entry: `{driver: csv, args: {urlpath: '$D/a/a.zip'}, cache: [{argkey: urlpath, type: compressed, regex_filter: 'nomatch'}]}`},
	{src: "i_badre", entry: `{driver: csv, args: {urlpath: '$D/a/a.zip'}, cache: [{argkey: urlpath, type: compressed, regex_filter: '(sub'}]}`},

	// type: dir
	{src: "d_full", entry: `{driver: textfiles, args: {urlpath: '$D/tree'}, cache: [{argkey: urlpath, type: dir, depth: 3}]}`},
	{src: "d_depth1", entry: `{driver: textfiles, args: {urlpath: '$D/tree'}, cache: [{argkey: urlpath, type: dir, depth: 1}]}`,
		deliberate: "depth bounds what Intake copies; intakefs shows the directory as it is", as: "d_full"},
	{src: "d_nodepth", entry: `{driver: textfiles, args: {urlpath: '$D/tree'}, cache: [{argkey: urlpath, type: dir}]}`},

	// argkey other than urlpath
	{src: "a_path", entry: `{driver: numpy, args: {path: '$D/n/arr.npy'}, cache: [{argkey: path, type: file}]}`},
	{src: "a_absent", entry: `{driver: csv, args: {urlpath: '$D/d/p0.csv'}, cache: [{argkey: url, type: file}]}`},
	{src: "a_other", entry: `{driver: textfiles, args: {urlpath: '$D/t/a.txt', text_encoding: utf-8}, cache: [{argkey: text_encoding, type: file}]}`},

	// more than one block: the first one's files are the data
	{src: "m_two_files", entry: `{driver: csv, args: {urlpath: '$D/d/p0.csv'}, cache: [{type: file}, {type: file, regex: 'd/'}]}`},
	{src: "m_first", entry: `{driver: csv, args: {urlpath: '$D/a/a.zip'}, cache: [{type: compressed, regex_filter: 'sub/p'}, {type: file, regex: 'a/'}]}`},
	{src: "m_collide", entry: `{driver: csv, args: {urlpath: '$D/a/a.zip'}, cache: [{type: compressed, regex_filter: 'sub/p'}, {type: file}]}`,
		deliberate: "Intake's second block writes the file where the first extracted (same md5 path): IsADirectoryError", as: "i_zip_f"},
	{src: "m_later_fails", entry: `{driver: csv, args: {urlpath: '$D/d/p0.csv'}, cache: [{type: file}, {type: compressed}]}`,
		deliberate: "Intake runs the unused second block (infer on .csv: UnboundLocalError); intakefs reads the first only", as: "f_plain"},
	{src: "m_later_badtype", entry: `{driver: csv, args: {urlpath: '$D/d/p0.csv'}, cache: [{type: file}, {type: foo}]}`},
	{src: "m_later_baddecomp", entry: `{driver: csv, args: {urlpath: '$D/d/p0.csv'}, cache: [{type: file}, {type: compressed, decomp: rar}]}`},

	// bad types and shapes
	{src: "b_foo", entry: `{driver: csv, args: {urlpath: '$D/d/p0.csv'}, cache: [{argkey: urlpath, type: foo}]}`},
	{src: "b_dat", entry: `{driver: csv, args: {urlpath: '$D/d/p0.csv'}, cache: [{argkey: urlpath, type: dat}]}`},
	{src: "b_null", entry: `{driver: csv, args: {urlpath: '$D/d/p0.csv'}, cache: [{argkey: urlpath, type: null}]}`},
	{src: "b_int", entry: `{driver: csv, args: {urlpath: '$D/d/p0.csv'}, cache: [{argkey: urlpath, type: 3}]}`},
	{src: "b_str", entry: `{driver: csv, args: {urlpath: '$D/d/p0.csv'}, cache: [file]}`},

	// one cache shared by two sources over one urlpath (see sharedRun)
	{src: "k1", entry: `{driver: csv, args: {urlpath: '$D/a/a.zip'}, cache: [{type: compressed, regex_filter: 'sub/p0'}]}`},
	{src: "k2", entry: `{driver: csv, args: {urlpath: '$D/a/a.zip'}, cache: [{type: compressed, regex_filter: 'sub/p[12]'}]}`},
}

// sharedRun runs k1 then k2 in one Intake cache: 0.6.6 gives k2 k1's files.
var sharedRun = cacheCase{src: "k2", deliberate: "Intake's cache is keyed by urlpath alone: k2 gets k1's files", as: "k2"}

// mapCatalog is a cache block that is a mapping, not a list: a catalog
// Intake refuses as a whole.
const mapCatalog = "sources:\n  b_map: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/d/p0.csv'}, cache: {argkey: urlpath, type: file}}\n"

type intakeCacheFile struct {
	Path   string `json:"path"`
	Member string `json:"member"`
	File   string `json:"file"`
	Sha256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Dir    bool   `json:"dir"`
}

type intakeCacheResult struct {
	Files []intakeCacheFile `json:"files"`
	Error *diffError        `json:"error"`
}

// makeCacheInputs writes the data files and archives the cases read.
func makeCacheInputs(t *testing.T, dir string) {
	for _, tool := range []string{"gzip", "bzip2", "xz", "tar", "zip"} {
		needTool(t, tool)
	}
	for i := 0; i < 3; i++ {
		b := csvRows(uint64(60+i), 20<<10)
		if i == 2 {
			b = b[:len(b)-1] // the last row without its newline
		}
		writeBytes(t, filepath.Join(dir, fmt.Sprintf("d/p%d.csv", i)), b)
		writeBytes(t, filepath.Join(dir, fmt.Sprintf("a/sub/p%d.csv", i)), b)
	}
	writeBytes(t, filepath.Join(dir, "a/README.txt"), []byte("not data\n"))
	writeBytes(t, filepath.Join(dir, "t/a.txt"), []byte("one\ntwo\n"))
	writeBytes(t, filepath.Join(dir, "t/b.txt"), []byte("three\nfour")) // no final newline
	writeBytes(t, filepath.Join(dir, "t/c.txt"), []byte("five\n"))
	writeBytes(t, filepath.Join(dir, "j/x.json"), []byte(`{"a": 1}`+"\n"))
	writeBytes(t, filepath.Join(dir, "j/y.json"), []byte(`{"a": 2, "b": [1, 2]}`+"\n"))
	writeBytes(t, filepath.Join(dir, "n/arr.npy"), append([]byte("\x93NUMPY\x01\x00"), csvRows(7, 300)...))
	writeBytes(t, filepath.Join(dir, "tree/top.txt"), []byte("top\n"))
	writeBytes(t, filepath.Join(dir, "tree/sub/mid.txt"), []byte("mid\n"))
	writeBytes(t, filepath.Join(dir, "tree/sub/deep/low.txt"), []byte("low\n"))
	// members in sorted order: Intake keeps the archive's order
	members := "README.txt sub sub/p0.csv sub/p1.csv sub/p2.csv"
	sh(t, dir+"/d", "gzip -k p0.csv && bzip2 -k p0.csv && gzip -c p0.csv > p0.gzdata && bzip2 -c p0.csv > p0.bzdata")
	sh(t, dir+"/j", "gzip -k x.json y.json && bzip2 -k x.json y.json")
	sh(t, dir+"/a", "tar --no-recursion -cf a.tar "+members+" && tar --no-recursion -czf a.tgz "+members+
		" && tar --no-recursion -cjf a.tbz "+members+" && tar --no-recursion -cJf a.tar.xz "+members+
		" && cp a.tgz a.tar.gz && cp a.tbz a.tar.bz2 && cp a.tar a.pkg && zip -q a.zip README.txt sub/ sub/p0.csv sub/p1.csv sub/p2.csv && cp a.zip zipdata.bin")
}

// runIntakeCache runs scripts/intake_cache_diff.py on a catalog.
func runIntakeCache(t *testing.T, catalog, cacheDir string, shared bool, srcs []string) map[string]intakeCacheResult {
	t.Helper()
	args := []string{"../scripts/intake_cache_diff.py", "--cache-dir", cacheDir}
	if shared {
		args = append(args, "--shared")
	}
	args = append(append(args, catalog), srcs...)
	cmd := exec.Command(diffPython, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("intake_cache_diff.py: %v\n%s", err, stderr.String())
	}
	var out struct {
		Intake  string                       `json:"intake"`
		Sources map[string]intakeCacheResult `json:"sources"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("intake_cache_diff.py output: %v\n%s", err, raw)
	}
	if out.Intake != "0.6.6" {
		t.Fatalf("the reference is Intake 0.6.6, %s has %s", diffPython, out.Intake)
	}
	return out.Sources
}

// servedPart is one file of what the engine serves for a source.
type servedPart struct {
	name string // "" for a source served as one file; "/" joins a tree's levels
	data []byte
}

// engineServe reads what the engine serves for a source: its data file,
// or every file of its data directory (parts or tree), by decoded name.
func engineServe(t *testing.T, f *FS, src string) (parts []servedPart, isDir bool, err error) {
	t.Helper()
	ctx := context.Background()
	root, err := f.Walk(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	kids, err := root.(Dir).ReadDir(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var node Node
	for _, k := range kids {
		if n := k.Name(); strings.HasPrefix(n, src+".") && !strings.Contains(n[len(src)+1:], "@") {
			if node != nil {
				t.Fatalf("two data nodes for %s: %s and %s", src, node.Name(), n)
			}
			node = k
		}
	}
	if node == nil {
		// not listed (a catalog that fails as a whole): what a lookup says
		_, err := f.Walk(ctx, src+".csv")
		if err == nil {
			t.Fatalf("%s: no data node listed, but %s.csv is found", src, src)
		}
		return nil, false, err
	}
	if fl, ok := node.(File); ok {
		var b bytes.Buffer
		if _, err := ReadAll(ctx, fl, &b); err != nil {
			return nil, false, err
		}
		return []servedPart{{data: b.Bytes()}}, false, nil
	}
	var walk func(d Dir, prefix string) error
	walk = func(d Dir, prefix string) error {
		ns, err := d.ReadDir(ctx)
		if err != nil {
			return err
		}
		for _, n := range ns {
			name, err := url.PathUnescape(n.Name())
			if err != nil {
				return fmt.Errorf("part name %q: %w", n.Name(), err)
			}
			if sub, ok := n.(Dir); ok {
				if err := walk(sub, prefix+name+"/"); err != nil {
					return err
				}
				continue
			}
			var b bytes.Buffer
			if _, err := ReadAll(ctx, n.(File), &b); err != nil {
				return err
			}
			parts = append(parts, servedPart{name: prefix + name, data: b.Bytes()})
		}
		return nil
	}
	err = walk(node.(Dir), "")
	return parts, true, err
}

// lines splits data into its lines, a missing final newline ignored.
func lines(b []byte) []string {
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// joinRows is what a driver that concatenates reads from several files:
// csv keeps the header once when every file has the same one.
func joinRows(driver string, files [][]byte) []string {
	sameHeader := driver == "csv"
	for _, f := range files {
		if l := lines(f); len(l) == 0 || l[0] != lines(files[0])[0] {
			sameHeader = false
		}
	}
	var out []string
	for i, f := range files {
		l := lines(f)
		if sameHeader && i > 0 {
			l = l[1:]
		}
		out = append(out, l...)
	}
	return out
}

var driverRe = regexp.MustCompile(`driver: (\w+)`)

// compareServed says how the engine's data differs from the files
// Intake's cache yields; "" when it is the same.
func compareServed(t *testing.T, driver string, want []intakeCacheFile, got []servedPart, isDir bool) string {
	t.Helper()
	var files []intakeCacheFile
	for _, w := range want {
		if !w.Dir {
			files = append(files, w)
		}
	}
	if len(files) == 0 {
		return "Intake's cache yields no files"
	}
	if isDir {
		// a directory: the same names with the same bytes
		wantSet := map[string]string{}
		for _, w := range files {
			wantSet[w.Member] = w.Sha256
		}
		gotSet := map[string]string{}
		for _, g := range got {
			s := sha256.Sum256(g.data)
			gotSet[g.name] = hex.EncodeToString(s[:])
		}
		if canon(wantSet) != canon(gotSet) {
			return fmt.Sprintf("directories differ: Intake (name: sha256) %s, intakefs %s", canon(wantSet), canon(gotSet))
		}
		return ""
	}
	data := got[0].data
	if len(files) == 1 {
		s := sha256.Sum256(data)
		if h := hex.EncodeToString(s[:]); h != files[0].Sha256 {
			return fmt.Sprintf("one file: intakefs's %d bytes (sha256 %.12s) are not Intake's %d (%.12s)", len(data), h, files[0].Size, files[0].Sha256)
		}
		return ""
	}
	var bs [][]byte
	for _, w := range files {
		b, err := os.ReadFile(w.File)
		if err != nil {
			t.Fatalf("Intake's cached file: %v", err)
		}
		if s := sha256.Sum256(b); hex.EncodeToString(s[:]) != w.Sha256 {
			t.Fatalf("Intake's cached %s changed since the script read it", w.File)
		}
		bs = append(bs, b)
	}
	wantRows, gotRows := joinRows(driver, bs), lines(data)
	if strings.Join(wantRows, "\n") != strings.Join(gotRows, "\n") {
		return fmt.Sprintf("rows differ: Intake's %d files give %d rows, intakefs's file %d", len(files), len(wantRows), len(gotRows))
	}
	return ""
}

func showIntake(r intakeCacheResult) string {
	if r.Error != nil {
		return r.Error.Type + ": " + r.Error.Msg
	}
	var s []string
	for _, f := range r.Files {
		if f.Dir {
			s = append(s, f.Member+"/ (dir)")
		} else {
			s = append(s, fmt.Sprintf("%s (%d bytes)", f.Member, f.Size))
		}
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// verdict compares the engine with one Intake result: "" when they agree.
func verdict(t *testing.T, c cacheCase, want intakeCacheResult, got []servedPart, isDir bool, gotErr error) string {
	t.Helper()
	switch {
	case want.Error != nil && gotErr != nil:
		return ""
	case want.Error != nil:
		return "Intake fails (" + showIntake(want) + ") where intakefs serves data"
	case gotErr != nil:
		return fmt.Sprintf("intakefs fails (%v) where Intake's cache yields %s", gotErr, showIntake(want))
	}
	driver := ""
	if m := driverRe.FindStringSubmatch(c.entry); m != nil {
		driver = m[1]
	}
	return compareServed(t, driver, want.Files, got, isDir)
}

func TestCacheBlockAgainstIntake(t *testing.T) {
	if err := intakeAvailable(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the cache differential test must run in CI: %v (install python3-intake)", err)
		}
		t.Skipf("skipping the cache differential test: %v", err)
	}
	work := t.TempDir()
	dir := filepath.Join(work, "cat")
	makeCacheInputs(t, dir)
	var cat strings.Builder
	cat.WriteString("sources:\n")
	byName := map[string]cacheCase{}
	var srcs []string
	for _, c := range cacheCases {
		if _, dup := byName[c.src]; dup {
			t.Fatalf("two cases named %s", c.src)
		}
		byName[c.src] = c
		srcs = append(srcs, c.src)
		fmt.Fprintf(&cat, "  %s: %s\n", c.src, strings.ReplaceAll(c.entry, "$D", "{{ CATALOG_DIR }}"))
	}
	writeFile(t, filepath.Join(dir, "cat.yaml"), cat.String())
	writeFile(t, filepath.Join(dir, "map.yaml"), mapCatalog)

	py := runIntakeCache(t, filepath.Join(dir, "cat.yaml"), filepath.Join(work, "cache"), false, srcs)
	pyShared := runIntakeCache(t, filepath.Join(dir, "cat.yaml"), filepath.Join(work, "cache-shared"), true, []string{"k1", "k2"})
	pyMap := runIntakeCache(t, filepath.Join(dir, "map.yaml"), filepath.Join(work, "cache-map"), false, []string{"b_map"})

	f := newFS(t, dir, "cat.yaml")
	type run struct {
		label string
		c     cacheCase
		want  intakeCacheResult
		f     *FS
	}
	var runs []run
	for _, c := range cacheCases {
		runs = append(runs, run{c.src, c, py[c.src], f})
	}
	runs = append(runs, run{"k2_shared", sharedRun, pyShared["k2"], f})
	runs = append(runs, run{"b_map", cacheCase{src: "b_map", entry: mapCatalog}, pyMap["b_map"], newFS(t, dir, "map.yaml")})

	nErr, nDel := 0, 0
	for _, r := range runs {
		c := r.c
		if r.want.Error == nil && r.want.Files == nil {
			t.Fatalf("%s: no result from Intake", r.label)
		}
		if r.want.Error != nil {
			nErr++
		}
		t.Run(r.label, func(t *testing.T) {
			got, isDir, gotErr := engineServe(t, r.f, c.src)
			t.Logf("Intake: %s", showIntake(r.want))
			if gotErr != nil {
				t.Logf("intakefs: %v", gotErr)
			}
			if c.deliberate == "" {
				if msg := verdict(t, c, r.want, got, isDir, gotErr); msg != "" {
					t.Error(msg)
				}
				return
			}
			nDel++
			if verdict(t, c, r.want, got, isDir, gotErr) == "" {
				t.Errorf("marked deliberate (%s), but intakefs now agrees with Intake", c.deliberate)
			}
			ref, ok := byName[c.as]
			if !ok || ref.deliberate != "" {
				t.Fatalf("deliberate: `as` must name a case that is not deliberate, got %q", c.as)
			}
			if msg := verdict(t, ref, py[c.as], got, isDir, gotErr); msg != "" {
				t.Errorf("deliberate difference (%s): intakefs should serve what Intake gives for %s: %s", c.deliberate, c.as, msg)
			}
		})
	}
	t.Logf("%d cases: Intake fails in %d, %d deliberate differences", len(runs), nErr, nDel)
}
