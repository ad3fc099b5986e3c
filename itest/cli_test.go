package itest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCLI runs the commands that show the same views without a mount.
func TestCLI(t *testing.T) {
	needBinary(t)
	needVega(t)
	cli := func(t *testing.T, args ...string) result {
		t.Helper()
		return run(t, 2*time.Minute, "", binPath, args...)
	}

	t.Run("ls", func(t *testing.T) {
		for _, c := range []struct {
			path string
			want []string
		}{
			{"", []string{"seattle_weather.csv", "stocks.csv", "cars.json", "flights_3m.parquet", "flights"}},
			{"flights", []string{"flights.json", "routes.csv", "flights@size=5k.json"}},
		} {
			args := []string{"ls", demoCatalog}
			if c.path != "" {
				args = append(args, c.path)
			}
			r := cli(t, args...)
			if r.err != nil {
				t.Errorf("intakefs %s: %v\n%s", strings.Join(args, " "), r.err, r.stderr)
				continue
			}
			for _, w := range c.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("intakefs %s: output lacks %q:\n%s", strings.Join(args, " "), w, r.stdout)
				}
			}
		}
	})

	t.Run("cat", func(t *testing.T) {
		for _, c := range []struct{ path, orig string }{
			{"stocks.csv", "data/stocks.csv"},
			{"flights/flights@size=5k.json", "data/flights-5k.json"},
		} {
			r := cli(t, "cat", demoCatalog, c.path)
			if r.err != nil {
				t.Errorf("intakefs cat %s: %v\n%s", c.path, r.err, r.stderr)
				continue
			}
			if diff := sameBytes([]byte(r.stdout), readFile(t, vega(c.orig))); diff != "" {
				t.Errorf("intakefs cat %s: %s", c.path, diff)
			}
		}
	})

	// The bytes before damage come out, as gzip -dc gives them, and then
	// the error: a CLI that buffers its output must not drop its last
	// buffer on the way out.
	t.Run("cat of damaged data", func(t *testing.T) {
		dir := realTempDir(t)
		t.Setenv("INTAKE_CACHE_DIR", filepath.Join(dir, "cache"))
		var b bytes.Buffer
		rng := rand.New(rand.NewPCG(6, 2))
		b.WriteString("id,v\n")
		for i := 0; b.Len() < 3<<20; i++ {
			fmt.Fprintf(&b, "%d,%d\n", i, rng.Uint64())
		}
		csv := filepath.Join(dir, "t.csv")
		if err := os.WriteFile(csv, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("gzip", "-k", csv).CombinedOutput(); err != nil {
			t.Fatalf("gzip: %v %s", err, out)
		}
		gz, err := os.ReadFile(csv + ".gz")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(csv+".gz", gz[:len(gz)*3/5], 0o644); err != nil {
			t.Fatal(err)
		}
		want, _ := exec.Command("gzip", "-dc", csv+".gz").Output() // fails at the cut, after its bytes
		if len(want) < 1<<20 || len(want)%(1<<20) == 0 {
			t.Fatalf("gzip -dc gives %d bytes of the cut file: not a test of a partial buffer", len(want))
		}
		if err := os.Remove(csv); err != nil {
			t.Fatal(err)
		}
		cat := filepath.Join(dir, "cat.yaml")
		if err := os.WriteFile(cat, []byte("sources:\n  t: {driver: csv, args: {urlpath: '{{ CATALOG_DIR }}/t.csv.gz'}}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := cli(t, "cat", cat, "t.csv")
		if r.exitCode <= 0 {
			t.Errorf("intakefs cat of a truncated gzip: exit %d, want a failure", r.exitCode)
		}
		if diff := sameBytes([]byte(r.stdout), want); diff != "" {
			t.Errorf("intakefs cat of a truncated gzip: %s", diff)
		}
		msg := strings.TrimSpace(r.stderr)
		if lines := strings.Split(msg, "\n"); !strings.Contains(lines[len(lines)-1], "corrupt") {
			t.Errorf("the error does not say the data is corrupt:\n%s", msg)
		}
	})

	t.Run("describe", func(t *testing.T) {
		r := cli(t, "describe", demoCatalog, "stocks")
		if r.err != nil {
			t.Fatalf("intakefs describe stocks: %v\n%s", r.err, r.stderr)
		}
		for _, w := range []string{"urlpath", "vega/data/stocks.csv", "Stock prices"} {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("intakefs describe stocks: output lacks %q:\n%s", w, r.stdout)
			}
		}
	})

	t.Run("describe invalid value", func(t *testing.T) {
		r := cli(t, "describe", demoCatalog, "flights/flights@size=7k")
		if r.err == nil {
			t.Fatalf("intakefs describe flights/flights@size=7k succeeded:\n%s", r.stdout)
		}
		// The reason, in Intake's words.
		if out := r.stdout + r.stderr; !strings.Contains(out, "is not one of the allowed values") {
			t.Errorf("intakefs describe flights/flights@size=7k: the reason is missing:\n%s", out)
		}
		if bad := crashSign(r.stdout + r.stderr); bad != "" {
			t.Errorf("output shows a crash: %q", bad)
		}
	})
}
