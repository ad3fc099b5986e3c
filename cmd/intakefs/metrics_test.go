package main

import (
	"net"
	"slices"
	"strings"
	"testing"
)

// An address that cannot be listened on is one line naming the flag,
// the value and why, without net's "listen tcp" noise.
func TestListenMetricsErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, c := range []struct{ addr, why string }{
		{taken.Addr().String(), "address already in use"},
		{"127.0.0.1", "missing port in address"},
		{"127.0.0.1:99999", "invalid port"},
		{"http://127.0.0.1:9090/metrics", "want HOST:PORT, not a URL"},
		{"::1:9090", "too many colons in address"},
	} {
		s, err := listenMetrics(c.addr)
		if err == nil {
			s.Close()
			t.Errorf("%s: listened", c.addr)
			continue
		}
		want := `--metrics-addr "` + c.addr + `": ` + c.why
		if err.Error() != want {
			t.Errorf("got  %q\nwant %q", err, want)
		}
	}
	if s, err := listenMetrics(""); s != nil || err != nil {
		t.Errorf("no --metrics-addr: %v, %v; want nothing", s, err)
	}
}

func TestHelperMetricsAddr(t *testing.T) {
	args, err := helperMountArgs([]string{"cat.yaml", "/mnt", "-o", "ro,metrics_addr=127.0.0.1:9101,allow_other"})
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.Index(args, "--metrics-addr"); i < 0 || i+1 >= len(args) || args[i+1] != "127.0.0.1:9101" {
		t.Errorf("metrics_addr= did not become --metrics-addr: %q", args)
	}
	if _, err := helperMountArgs([]string{"cat.yaml", "/mnt", "-o", "metrics_addr"}); err == nil || !strings.Contains(err.Error(), "metrics_addr") {
		t.Errorf("metrics_addr without a value: %v, want an error naming it", err)
	}
}

func TestHelperRemoteRecheck(t *testing.T) {
	args, err := helperMountArgs([]string{"cat.yaml", "/mnt", "-o", "remote_recheck=1m"})
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.Index(args, "--remote-recheck"); i < 0 || i+1 >= len(args) || args[i+1] != "1m" {
		t.Errorf("remote_recheck= did not become --remote-recheck: %q", args)
	}
}
