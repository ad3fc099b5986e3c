package decomp

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// needTool finds a command-line tool the test makes its input with. A
// missing tool fails the test under CI (CI set) and skips it elsewhere.
// Debian packages: gzip bzip2 xz-utils zstd lz4 zip tar.
func needTool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s not installed (Debian packages: gzip bzip2 xz-utils zstd lz4 zip tar)", name)
	if os.Getenv("CI") != "" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// run runs a tool with stdin, returning its stdout.
func run(tb testing.TB, stdin []byte, name string, args ...string) []byte {
	tb.Helper()
	needTool(tb, name)
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// runIn runs a tool in dir, for tools that take files (zip, tar, and
// zstd/lz4 when they should record the content size of a file).
func runIn(tb testing.TB, dir, name string, args ...string) {
	tb.Helper()
	needTool(tb, name)
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

var words = strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu")

// csvData is n bytes (at least; whole rows) of CSV-like data, the same
// for the same seed.
func csvData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	var b bytes.Buffer
	b.Grow(n + 128)
	b.WriteString("id,name,city,value,ratio,timestamp\n")
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%d,%s %s,%s,%d,%.4f,2024-%02d-%02dT%02d:%02d:%02dZ\n",
			i, words[r.IntN(len(words))], words[r.IntN(len(words))], words[r.IntN(len(words))],
			r.IntN(1000000)-500000, r.Float64()*100, 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60))
	}
	return b.Bytes()
}

func writeFile(tb testing.TB, dir, name string, data []byte) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

func readFile(tb testing.TB, p string) []byte {
	tb.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// firstDiff is the first offset where a and b differ (len of the shorter
// when one is a prefix of the other), -1 when equal.
func firstDiff(a, b []byte) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}
