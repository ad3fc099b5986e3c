package itest

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// badCatalog has one good source and three broken ones. Intake itself
// refuses the whole file; intakefs serves what it can and reports the rest.
const badCatalog = `metadata:
  version: 1
sources:
  good:
    description: a good source
    driver: csv
    args:
      urlpath: '{{ CATALOG_DIR }}/good.csv'
  notamapping: just a string
  badtype:
    description: a parameter whose type is not one Intake knows
    driver: csv
    parameters:
      n:
        description: a number
        type: complexnumber
        default: 1
    args:
      urlpath: '{{ CATALOG_DIR }}/good_{{ n }}.csv'
  baddefault:
    description: an int parameter whose default is not an int
    driver: csv
    parameters:
      n:
        description: a number
        type: int
        default: abc
    args:
      urlpath: '{{ CATALOG_DIR }}/good_{{ n }}.csv'
  alsogood:
    description: another good source, after the broken ones
    driver: csv
    args:
      urlpath: '{{ CATALOG_DIR }}/good.csv'
`

const goodCSV = "a,b\n1,2\n3,4\n"

// lineOf is the 1-based line of the first line of text that starts with
// prefix (after indentation).
func lineOf(t *testing.T, text, prefix string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), prefix) {
			return i + 1
		}
	}
	t.Fatalf("no line starts with %q", prefix)
	return 0
}

func TestBadCatalogStillMounts(t *testing.T) {
	dir := realTempDir(t)
	catalog := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(catalog, []byte(badCatalog), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "good.csv"), []byte(goodCSV), 0o644); err != nil {
		t.Fatal(err)
	}
	d := mount(t, catalog)

	t.Run("good sources read", func(t *testing.T) {
		for _, name := range []string{"good.csv", "alsogood.csv"} {
			if got := string(readFile(t, d.path(name))); got != goodCSV {
				t.Errorf("%s: %q, want %q", name, got, goodCSV)
			}
			if _, err := withTimeout(t, "stat", func() (os.FileInfo, error) {
				return os.Stat(d.path(strings.TrimSuffix(name, ".csv") + "/describe.yaml"))
			}); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})

	t.Run("broken sources", func(t *testing.T) {
		got := readDirNames(t, d.path(""))
		for _, name := range []string{"notamapping.csv", "notamapping.data", "notamapping"} {
			if _, ok := got[name]; ok {
				t.Errorf("%s is listed, but that source is not a mapping (listing %q)", name, sortedKeys(got))
			}
		}
		// Invalid defaults: listed (its directory exists), but reading fails.
		if mode, ok := got["baddefault"]; !ok || !mode.IsDir() {
			t.Errorf("baddefault/ is not listed as a directory (listing %q)", sortedKeys(got))
		}
		_, err := withTimeout(t, "read", func() ([]byte, error) { return os.ReadFile(d.path("baddefault.csv")) })
		if err == nil {
			t.Errorf("reading baddefault.csv succeeded; its default n=abc is not an int")
		}
	})

	t.Run("errors.txt", func(t *testing.T) {
		errs := string(readFile(t, d.path(".catalog/errors.txt")))
		t.Logf(".catalog/errors.txt:\n%s", errs)
		if strings.TrimSpace(errs) == "" {
			t.Fatal(".catalog/errors.txt is empty")
		}
		if !strings.Contains(errs, "bad.yaml") {
			t.Errorf("errors.txt does not name the file bad.yaml")
		}
		checkLine := func(what string, lines ...int) {
			for _, n := range lines {
				re := regexp.MustCompile(`(:|line )` + strconv.Itoa(n) + `\b`)
				if re.MatchString(errs) {
					return
				}
			}
			t.Errorf("errors.txt does not give the line of %s (one of %v)", what, lines)
		}
		checkLine("notamapping", lineOf(t, badCatalog, "notamapping:"))
		checkLine("badtype's parameter type",
			lineOf(t, badCatalog, "type: complexnumber"), lineOf(t, badCatalog, "badtype:"), lineOf(t, badCatalog, "n:"))
		if !strings.Contains(errs, "notamapping") {
			t.Errorf("errors.txt does not name the source notamapping")
		}
		if !strings.Contains(errs, "complexnumber") && !strings.Contains(errs, "badtype") {
			t.Errorf("errors.txt says nothing of badtype's type complexnumber")
		}
	})

	t.Run("log", func(t *testing.T) {
		log := d.Output()
		want := "line=" + strconv.Itoa(lineOf(t, badCatalog, "notamapping:"))
		if !strings.Contains(log, "bad.yaml") || !strings.Contains(log, "source=notamapping") || !strings.Contains(log, want) {
			t.Errorf("the log does not name file, line (%s) and source of notamapping:\n%s", want, log)
		}
	})
}

// TestMountFailures: a mount that cannot be made fails at once, with one
// line of error and no mount left behind.
func TestMountFailures(t *testing.T) {
	needBinary(t)
	dir := realTempDir(t)
	existing := filepath.Join(dir, "mnt")
	if err := os.Mkdir(existing, 0o755); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, catalog, mnt string
		extra              []string
	}{
		{"missing catalog", filepath.Join(dir, "nosuch.yaml"), existing, nil},
		{"missing mount point", demoCatalog, filepath.Join(dir, "nosuch", "mnt"), nil},
		{"mount point is a file", demoCatalog, notDir, nil},
		{"read-write asked for", demoCatalog, existing, []string{"--read-only=false"}},
		{"no remote recheck interval", demoCatalog, existing, []string{"--remote-recheck", "0s"}},
		{"no retries at all", demoCatalog, existing, []string{"--retries", "0"}},
		{"no retry time", demoCatalog, existing, []string{"--retry-max-time", "0s"}},
		{"negative idle timeout", demoCatalog, existing, []string{"--idle-timeout", "-1s"}},
		{"read-write option", demoCatalog, existing, []string{"-o", "nodev,rw"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(mountPoints())
			start := time.Now()
			r := run(t, 60*time.Second, "", binPath,
				append(append([]string{"mount", c.catalog, c.mnt}, c.extra...), cacheArgs(t, filepath.Join(dir, "cache"))...)...)
			if isMounted(c.mnt) {
				lazyUnmount(c.mnt)
				t.Errorf("%s is mounted", c.mnt)
			}
			if after := len(mountPoints()); after > before {
				t.Errorf("%d mounts before, %d after", before, after)
			}
			if r.exitCode <= 0 {
				t.Fatalf("intakefs mount %s %s: exit code %d (%v), want a failure; output:\n%s%s",
					c.catalog, c.mnt, r.exitCode, r.err, r.stdout, r.stderr)
			}
			if el := time.Since(start); el > 30*time.Second {
				t.Errorf("took %v to fail", el)
			}
			msg := strings.TrimSpace(r.stderr)
			if bad := crashSign(r.stdout + r.stderr); bad != "" {
				t.Errorf("output shows a crash (%q):\n%s", bad, msg)
			}
			if msg == "" || strings.Contains(msg, "\n") {
				t.Errorf("stderr should be one line of error, it is:\n%s", msg)
			}
			want := c.catalog
			if strings.Contains(c.name, "mount point") {
				want = c.mnt
			} else if len(c.extra) > 0 {
				want = c.extra[0]
			}
			if !strings.Contains(msg, filepath.Base(want)) {
				t.Errorf("error %q does not name %s", msg, want)
			}
			t.Logf("exit %d: %s", r.exitCode, msg)
		})
	}
}

// Mounting on a mount point that is already an intakefs mount is a
// one-line error, not a second mount hiding the first.
func TestMountOverMount(t *testing.T) {
	d := mount(t, demoCatalog)
	r := run(t, 60*time.Second, "", binPath,
		append([]string{"mount", demoCatalog, d.Mnt}, cacheArgs(t, filepath.Join(t.TempDir(), "cache2"))...)...)
	if r.exitCode <= 0 {
		t.Fatalf("a second mount on %s: exit %d (%v), want a failure; output:\n%s%s", d.Mnt, r.exitCode, r.err, r.stdout, r.stderr)
	}
	msg := strings.TrimSpace(r.stderr)
	if !strings.Contains(msg, "already a mount point") || strings.Contains(msg, "\n") {
		t.Errorf("want one line saying the mount point is in use, got:\n%s", msg)
	}
	if _, err := os.Stat(d.path(".catalog/errors.txt")); err != nil {
		t.Errorf("the first mount no longer serves: %v", err)
	}
}

// An -o option the kernel does not know: the mount fails, nothing is
// mounted, and intakefs's own line names the option (fusermount3, which
// go-fuse falls back to, prints its own line first).
func TestMountUnknownOption(t *testing.T) {
	needBinary(t)
	dir := realTempDir(t)
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	r := run(t, 60*time.Second, "", binPath,
		append([]string{"mount", demoCatalog, mnt, "-o", "nosuchoption42"}, cacheArgs(t, filepath.Join(dir, "cache"))...)...)
	if isMounted(mnt) {
		lazyUnmount(mnt)
		t.Errorf("%s is mounted", mnt)
	}
	if r.exitCode <= 0 {
		t.Fatalf("exit code %d (%v), want a failure; output:\n%s%s", r.exitCode, r.err, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "intakefs: ") || !strings.Contains(last, "-o options (nosuchoption42)") {
		t.Errorf("the last line should be intakefs's, naming the option:\n%s", r.stderr)
	}
	if bad := crashSign(r.stdout + r.stderr); bad != "" {
		t.Errorf("output shows a crash (%q):\n%s", bad, r.stderr)
	}
}
