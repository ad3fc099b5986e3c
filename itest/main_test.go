package itest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	pythonBin = "/usr/bin/python3" // Debian's, with python3-intake and python3-pandas

	buildTimeout  = 10 * time.Minute
	mountTimeout  = 30 * time.Second // from start to the mount showing in mountinfo
	stopTimeout   = 20 * time.Second // from SIGINT to the daemon's exit
	ioTimeout     = 2 * time.Minute  // one read of a mounted file
	toolTimeout   = 3 * time.Minute  // one python or node run
	daemonTimeout = 20 * time.Minute // the most a daemon may live
)

var (
	repoRoot    string // absolute path of the repository
	binPath     string // the intakefs binary built by TestMain, "" if none
	binMissing  string // why there is no binary
	raceLogBase string // GORACE log_path for daemons built with -race
	vegaDir     string
	demoCatalog string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "itest:", err)
		return 1
	}
	repoRoot = root
	vegaDir = filepath.Join(repoRoot, "testdata", "vega")
	demoCatalog = filepath.Join(repoRoot, "testdata", "demo", "catalog.yaml")

	tmp, err := os.MkdirTemp("", "intakefs-itest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "itest:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	raceLogBase = filepath.Join(tmp, "race")

	if bin := os.Getenv("INTAKEFS_BIN"); bin != "" {
		// Test a binary built elsewhere.
		if binPath, err = filepath.Abs(bin); err != nil {
			fmt.Fprintln(os.Stderr, "itest:", err)
			return 1
		}
	} else if goFiles, _ := filepath.Glob(filepath.Join(repoRoot, "cmd", "intakefs", "*.go")); len(goFiles) == 0 {
		binMissing = "cmd/intakefs has no Go files yet"
	} else {
		binPath = filepath.Join(tmp, "intakefs")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "../cmd/intakefs")
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "itest: go %s: %v\n%s", strings.Join(args, " "), err, out)
			return 1
		}
	}
	return m.Run()
}

// inCI reports whether the tests run under CI, where anything missing is a
// failure rather than a reason to skip.
func inCI() bool {
	v := strings.ToLower(strings.TrimSpace(os.Getenv("CI")))
	return v != "" && v != "0" && v != "false" && v != "no"
}

// unavailable skips the test, or fails it under CI.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if inCI() {
		t.Fatalf("%s (CI is set, so this is a failure)", msg)
	}
	t.Skip(msg)
}

func needBinary(t *testing.T) {
	t.Helper()
	if binPath == "" {
		unavailable(t, "no intakefs binary: %s", binMissing)
	}
}

// needVega makes sure testdata/vega (from scripts/setup.sh) is there.
func needVega(t *testing.T) {
	t.Helper()
	for _, p := range []string{
		"datapackage.json",
		"data/flights-3m.parquet",
		"parts/seattle-weather-part3.csv",
	} {
		if _, err := os.Stat(filepath.Join(vegaDir, p)); err != nil {
			unavailable(t, "testdata/vega is incomplete (%v): run scripts/setup.sh", err)
		}
	}
}

var (
	pythonOnce sync.Once
	pythonErr  error
)

// needPython makes sure Debian's python3 can import intake and pandas.
func needPython(t *testing.T) {
	t.Helper()
	pythonOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, pythonBin, "-c", "import intake, pandas").CombinedOutput()
		if err != nil {
			pythonErr = fmt.Errorf("%s cannot import intake and pandas: %v: %s", pythonBin, err, bytes.TrimSpace(out))
		}
	})
	if pythonErr != nil {
		unavailable(t, "%v (run scripts/setup.sh)", pythonErr)
	}
}

// needNode makes sure node and scripts/node's DuckDB are installed.
func needNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		unavailable(t, "node not found: %v", err)
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "scripts", "node", "node_modules", "@duckdb", "node-api")); err != nil {
		unavailable(t, "scripts/node has no node_modules (run scripts/setup.sh): %v", err)
	}
}

// vega is the path of a file in testdata/vega.
func vega(rel string) string { return filepath.Join(vegaDir, filepath.FromSlash(rel)) }

// result of a subprocess run.
type result struct {
	stdout, stderr string
	err            error
	exitCode       int
}

// run runs a command with a timeout; dir "" is the test's working directory.
func run(t *testing.T, timeout time.Duration, dir string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), err: err, exitCode: -1}
	if cmd.ProcessState != nil {
		r.exitCode = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() != nil {
		r.err = fmt.Errorf("%s timed out after %v (%v)", name, timeout, err)
	}
	return r
}

// withTimeout runs f (some file system operation on the mount) and fails the
// test if it has not returned in time: a hung FUSE call must not hang the
// whole test binary. The goroutine of a call that hangs is left behind; the
// daemon's shutdown in the test's cleanup unblocks it.
func withTimeout[T any](t *testing.T, what string, f func() (T, error)) (T, error) {
	t.Helper()
	type answer struct {
		v   T
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		v, err := f()
		ch <- answer{v, err}
	}()
	select {
	case a := <-ch:
		return a.v, a.err
	case <-time.After(ioTimeout):
		t.Fatalf("%s: no answer after %v", what, ioTimeout)
		var zero T
		return zero, errors.New("timeout")
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := withTimeout(t, "read "+path, func() ([]byte, error) { return os.ReadFile(path) })
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

func statFile(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := withTimeout(t, "stat "+path, func() (os.FileInfo, error) { return os.Stat(path) })
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return fi
}

func readDirNames(t *testing.T, dir string) map[string]os.FileMode {
	t.Helper()
	ents, err := withTimeout(t, "readdir "+dir, func() ([]os.DirEntry, error) { return os.ReadDir(dir) })
	if err != nil {
		t.Fatalf("readdir %s: %v", dir, err)
	}
	names := make(map[string]os.FileMode, len(ents))
	for _, e := range ents {
		names[e.Name()] = e.Type()
	}
	return names
}

// sameBytes reports where two byte slices first differ, or "" when equal.
func sameBytes(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	n := min(len(got), len(want))
	i := 0
	for i < n && got[i] == want[i] {
		i++
	}
	ctx := func(b []byte) string {
		lo, hi := max(0, i-40), min(len(b), i+40)
		return fmt.Sprintf("%q", b[lo:hi])
	}
	return fmt.Sprintf("lengths %d vs %d, first difference at byte %d: got …%s…, want …%s…",
		len(got), len(want), i, ctx(got), ctx(want))
}
