package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// confOpts says what a backend cannot do.
type confOpts struct {
	// noList: the backend cannot list (HTTP). List must then fail with
	// ErrNotSupported, and so must a glob with metacharacters.
	noList bool
	// noDirStat: Stat of a directory is not possible (HTTP).
	noDirStat bool
}

// confData is the fixed content of the conformance objects.
func confData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + (i*7+i/26)%26)
	}
	return b
}

// runConformance is the one test every Store passes. base is a URL (or
// path) with no trailing slash under which put(key, data) creates objects;
// keys use "/" and are relative to base.
func runConformance(t *testing.T, s Store, base string, put func(key string, data []byte), o confOpts) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	data := confData(1000)
	files := map[string][]byte{
		"a.csv":                data,
		"empty.txt":            {},
		"dir/b.csv":            []byte("x,y\n1,2\n"),
		"dir/c.txt":            []byte("hello\n"),
		"dir/sub/d.csv":        []byte("x,y\n3,4\n"),
		"dir/sub/deeper/e.csv": []byte("x,y\n5,6\n"),
		"other/f.csv":          []byte("x,y\n7,8\n"),
		"other/g.json":         []byte("{}\n"),
	}
	for k, v := range files {
		put(k, v)
	}
	u := func(k string) string { return base + "/" + k }

	t.Run("Stat", func(t *testing.T) {
		info, err := s.Stat(ctx, u("a.csv"))
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != 1000 || info.IsDir || info.URL != u("a.csv") {
			t.Errorf("Stat a.csv = %+v", info)
		}
		if info.Identity() == "" {
			t.Error("empty identity")
		}
		again, err := s.Stat(ctx, u("a.csv"))
		if err != nil || again.Identity() != info.Identity() {
			t.Errorf("identity not stable: %q vs %q (%v)", info.Identity(), again.Identity(), err)
		}
		e, err := s.Stat(ctx, u("empty.txt"))
		if err != nil || e.Size != 0 {
			t.Errorf("Stat empty.txt = %+v, %v", e, err)
		}
		_, err = s.Stat(ctx, u("missing.csv"))
		if !errors.Is(err, ErrNotExist) {
			t.Fatalf("Stat missing: want ErrNotExist, got %v", err)
		}
		if !strings.Contains(err.Error(), "missing.csv") {
			t.Errorf("error does not name the object: %v", err)
		}
		if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrPermission) {
			t.Errorf("missing object matches another class too: %v", err)
		}
		_, err = s.Stat(ctx, u("nodir/missing.csv"))
		if !errors.Is(err, ErrNotExist) {
			t.Errorf("Stat in missing dir: want ErrNotExist, got %v", err)
		}
		if !o.noDirStat {
			d, err := s.Stat(ctx, u("dir"))
			if err != nil || !d.IsDir {
				t.Errorf("Stat dir = %+v, %v; want a directory", d, err)
			}
		}
	})

	t.Run("IdentityChanges", func(t *testing.T) {
		put("rewrite.bin", []byte("version one"))
		a, err := s.Stat(ctx, u("rewrite.bin"))
		if err != nil {
			t.Fatal(err)
		}
		put("rewrite.bin", []byte("version two, longer"))
		b, err := s.Stat(ctx, u("rewrite.bin"))
		if err != nil {
			t.Fatal(err)
		}
		if a.Identity() == b.Identity() {
			t.Errorf("identity unchanged after rewrite: %q", a.Identity())
		}
		if b.Size != int64(len("version two, longer")) {
			t.Errorf("size after rewrite = %d", b.Size)
		}
		got := readAll(t, ctx, s, u("rewrite.bin"), 0, -1)
		if string(got) != "version two, longer" {
			t.Errorf("read after rewrite = %q", got)
		}
	})

	t.Run("ReadVersion", func(t *testing.T) {
		put("ver.bin", []byte("first version"))
		v1, err := s.Stat(ctx, u("ver.bin"))
		if err != nil {
			t.Fatal(err)
		}
		rc, err := ReadVersion(ctx, s, v1, 6, 7)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(b) != "version" {
			t.Errorf("ReadVersion(current) = %q, %v", b, err)
		}
		put("ver.bin", []byte("second version!"))
		v2, err := s.Stat(ctx, u("ver.bin"))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.(VersionReader); !ok {
			t.Fatalf("%T is no VersionReader", s)
		}
		// Never the new bytes for the old version: ErrChanged, or
		// (a store that keeps versions) exactly the old bytes.
		rc, err = ReadVersion(ctx, s, v1, 0, -1)
		if err == nil {
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || string(b) != "first version" {
				t.Errorf("ReadVersion(old) = %q, %v; want ErrChanged or the old bytes", b, err)
			}
		} else if !errors.Is(err, ErrChanged) || errors.Is(err, ErrNotExist) || IsRetryable(err) {
			t.Errorf("ReadVersion(old) = %v, want ErrChanged only", err)
		}
		rc, err = ReadVersion(ctx, s, v2, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(rc)
		rc.Close()
		if string(b) != "second version!" {
			t.Errorf("ReadVersion(new) = %q", b)
		}
	})

	t.Run("ReadRange", func(t *testing.T) {
		cases := []struct {
			off, n int64
			want   []byte
		}{
			{0, 10, data[:10]},
			{100, 50, data[100:150]},
			{990, 10, data[990:]},
			{995, 100, data[995:]}, // straddles the end
			{1000, 10, nil},        // at the end
			{5000, 10, nil},        // past the end
			{0, -1, data},          // whole
			{500, -1, data[500:]},  // to the end
			{999, -1, data[999:]},  // last byte
			{2000, -1, nil},        // past the end, to the end
			{10, 0, nil},           // nothing
			{0, 1000, data},        // exactly all
			{0, 1 << 40, data},     // more than all
			{1, 998, data[1:999]},  // inner
		}
		for _, c := range cases {
			got := readAll(t, ctx, s, u("a.csv"), c.off, c.n)
			if !bytes.Equal(got, c.want) {
				t.Errorf("ReadRange(%d, %d) = %d bytes %q, want %d bytes", c.off, c.n, len(got), trunc(got), len(c.want))
			}
		}
		for _, c := range [][2]int64{{0, -1}, {0, 10}, {5, 1}} {
			if got := readAll(t, ctx, s, u("empty.txt"), c[0], c[1]); len(got) != 0 {
				t.Errorf("ReadRange(empty, %d, %d) = %q", c[0], c[1], got)
			}
		}
		_, err := s.ReadRange(ctx, u("missing.csv"), 0, 10)
		if !errors.Is(err, ErrNotExist) {
			t.Errorf("ReadRange missing: want ErrNotExist, got %v", err)
		}
		_, err = s.ReadRange(ctx, u("missing.csv"), 0, -1)
		if !errors.Is(err, ErrNotExist) {
			t.Errorf("ReadRange missing whole: want ErrNotExist, got %v", err)
		}
	})

	t.Run("List", func(t *testing.T) {
		if o.noList {
			_, err := s.List(ctx, u("dir"))
			if !errors.Is(err, ErrNotSupported) {
				t.Fatalf("List on a store that cannot list: want ErrNotSupported, got %v", err)
			}
			if !strings.Contains(err.Error(), u("dir")) {
				t.Errorf("error does not name the URL: %v", err)
			}
			return
		}
		want := []string{"dir/b.csv", "dir/c.txt", "dir/sub/"}
		for _, dir := range []string{u("dir"), u("dir") + "/"} {
			ents, err := s.List(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := entNames(ents, base); !equalStrings(got, want) {
				t.Errorf("List(%s) = %v, want %v", dir, got, want)
			}
			for _, e := range ents {
				if e.IsDir {
					if strings.HasSuffix(e.URL, "/") {
						t.Errorf("directory URL %q ends in /", e.URL)
					}
					continue
				}
				st, err := s.Stat(ctx, e.URL)
				if err != nil {
					t.Errorf("Stat(%s) of a listed entry: %v", e.URL, err)
					continue
				}
				if st.Size != e.Size || st.Identity() != e.Identity() {
					t.Errorf("List and Stat disagree on %s: %+v vs %+v", e.URL, e, st)
				}
			}
		}
		ents, err := s.List(ctx, base)
		if err != nil {
			t.Fatal(err)
		}
		got := entNames(ents, base)
		for _, w := range []string{"a.csv", "dir/", "empty.txt", "other/"} {
			if !contains(got, w) {
				t.Errorf("List(base) = %v, lacks %s", got, w)
			}
		}
		for i := 1; i < len(ents); i++ {
			if ents[i-1].URL >= ents[i].URL {
				t.Errorf("List not sorted: %q before %q", ents[i-1].URL, ents[i].URL)
			}
		}
		// Descend through a listed directory's URL.
		for _, e := range ents {
			if e.IsDir && strings.HasSuffix(e.URL, "/other") {
				sub, err := s.List(ctx, e.URL)
				if err != nil || !equalStrings(entNames(sub, base), []string{"other/f.csv", "other/g.json"}) {
					t.Errorf("List(%s) = %v, %v", e.URL, entNames(sub, base), err)
				}
			}
		}
		if _, err := s.List(ctx, u("nope")); !errors.Is(err, ErrNotExist) {
			t.Errorf("List missing: want ErrNotExist, got %v", err)
		}
	})

	t.Run("Glob", func(t *testing.T) {
		one, err := Glob(ctx, s, u("a.csv"))
		if err != nil || len(one) != 1 || one[0].Size != 1000 {
			t.Errorf("Glob without metacharacters = %v, %v", one, err)
		}
		if _, err := Glob(ctx, s, u("missing.csv")); !errors.Is(err, ErrNotExist) {
			t.Errorf("Glob of a missing plain path: want ErrNotExist, got %v", err)
		}
		if o.noList {
			if _, err := Glob(ctx, s, u("dir/*.csv")); !errors.Is(err, ErrNotSupported) {
				t.Errorf("Glob on a store that cannot list: want ErrNotSupported, got %v", err)
			}
			return
		}
		cases := []struct {
			pattern string
			want    []string
		}{
			{"dir/*.csv", []string{"dir/b.csv"}},
			{"dir/*", []string{"dir/b.csv", "dir/c.txt"}},
			{"*/*.csv", []string{"dir/b.csv", "other/f.csv"}},
			{"dir/**/*.csv", []string{"dir/b.csv", "dir/sub/d.csv", "dir/sub/deeper/e.csv"}},
			{"**/*.json", []string{"other/g.json"}},
			{"dir/sub/d.cs?", []string{"dir/sub/d.csv"}},
			{"dir/[bc].*", []string{"dir/b.csv", "dir/c.txt"}},
			{"*/sub/d.csv", []string{"dir/sub/d.csv"}},
			{"dir/*.parquet", nil},
			{"nope/*.csv", nil},
			{"nope/**/x.csv", nil},
		}
		for _, c := range cases {
			got, err := Glob(ctx, s, u(c.pattern))
			if err != nil {
				t.Errorf("Glob(%s): %v", c.pattern, err)
				continue
			}
			if names := entNames(got, base); !equalStrings(names, c.want) {
				t.Errorf("Glob(%s) = %v, want %v", c.pattern, names, c.want)
			}
		}
	})
}

func readAll(t *testing.T, ctx context.Context, s Store, url string, off, n int64) []byte {
	t.Helper()
	rc, err := s.ReadRange(ctx, url, off, n)
	if err != nil {
		t.Fatalf("ReadRange(%s, %d, %d): %v", url, off, n, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %s at %d+%d: %v", url, off, n, err)
	}
	return b
}

// entNames gives entries relative to base, directories with a trailing /.
func entNames(ents []ObjectInfo, base string) []string {
	var out []string
	for _, e := range ents {
		n := strings.TrimPrefix(strings.TrimPrefix(e.URL, base), "/")
		if e.IsDir {
			n += "/"
		}
		out = append(out, n)
	}
	return out
}

func equalStrings(a, b []string) bool {
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

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func trunc(b []byte) string {
	if len(b) > 20 {
		return fmt.Sprintf("%s…", b[:20])
	}
	return string(b)
}
