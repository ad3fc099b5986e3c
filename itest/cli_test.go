package itest

import (
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
