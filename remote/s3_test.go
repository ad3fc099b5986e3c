package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	testS3Key    = "AKIAIOSFODNN7EXAMPLE"
	testS3Secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
)

// s3TestEnv keeps the tests off every real AWS endpoint and credential:
// no instance-metadata lookups, no shared files, a CA bundle that exists
// (AWS_CA_BUNDLE is set in this environment and must keep working).
func s3TestEnv(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "credentials"))
	for _, v := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		t.Setenv("AWS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
	}
}

// versitygwBinary finds versitygw on PATH or in $(go env GOPATH)/bin.
func versitygwBinary() string {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startVersitygw runs versitygw's posix backend on a loopback port and
// returns its endpoint URL. It is stopped when the test ends.
func startVersitygw(t *testing.T) string {
	t.Helper()
	bin := versitygwBinary()
	if bin == "" {
		msg := "versitygw not found on PATH or in $(go env GOPATH)/bin; install it with: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	root := t.TempDir()
	var lastErr error
	for try := 0; try < 3; try++ {
		port := freePort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		cmd := exec.Command(bin, "--access", testS3Key, "--secret", testS3Secret, "--port", addr, "posix", root)
		var logBuf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		stop := func() {
			cmd.Process.Kill()
			<-exited
		}
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-exited:
				lastErr = fmt.Errorf("versitygw exited: %s", logBuf.String())
			default:
			}
			if lastErr != nil {
				break
			}
			if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
				c.Close()
				t.Cleanup(stop)
				return "http://" + addr
			}
			time.Sleep(50 * time.Millisecond)
		}
		stop()
		if lastErr == nil {
			lastErr = fmt.Errorf("versitygw did not listen on %s: %s", addr, logBuf.String())
		}
	}
	t.Fatal(lastErr)
	return ""
}

// rawS3 is a plain SDK client for setting up test objects.
func rawS3(t *testing.T, endpoint string) *s3.Client {
	st, err := NewS3(context.Background(), S3Options{Key: testS3Key, Secret: testS3Secret, EndpointURL: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	return st.client
}

func createBucket(t *testing.T, c *s3.Client, bucket string) {
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
}

func s3Put(t *testing.T, c *s3.Client, bucket, prefix string) func(key string, data []byte) {
	return func(key string, data []byte) {
		k := key
		if prefix != "" {
			k = prefix + "/" + key
		}
		_, err := c.PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(k), Body: bytes.NewReader(data),
		})
		if err != nil {
			t.Fatalf("PutObject %s: %v", k, err)
		}
	}
}

func TestS3Conformance(t *testing.T) {
	s3TestEnv(t)
	endpoint := startVersitygw(t)
	raw := rawS3(t, endpoint)
	createBucket(t, raw, "conf")
	// Through Open, as a catalog would configure it (client_kwargs form).
	st, err := Open("s3", map[string]any{
		"key": testS3Key, "secret": testS3Secret,
		"client_kwargs": map[string]any{"endpoint_url": endpoint, "region_name": "us-east-1"},
		"config_kwargs": map[string]any{"s3": map[string]any{"addressing_style": "path"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("prefix", func(t *testing.T) {
		runConformance(t, st, "s3://conf/data", s3Put(t, raw, "conf", "data"), confOpts{})
	})
	t.Run("bucket-root", func(t *testing.T) {
		createBucket(t, raw, "root")
		runConformance(t, WithRetry(st, RetryPolicy{}), "s3://root", s3Put(t, raw, "root", ""), confOpts{})
	})
	t.Run("pagination", func(t *testing.T) {
		createBucket(t, raw, "many")
		put := s3Put(t, raw, "many", "")
		var want []string
		for i := 0; i < 1003; i++ {
			k := fmt.Sprintf("p/f%04d.txt", i)
			put(k, []byte("x"))
			want = append(want, "s3://many/"+k)
		}
		put("p/zdir/x.txt", []byte("y"))
		ents, err := st.List(context.Background(), "s3://many/p")
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 1004 {
			t.Fatalf("listed %d entries, want 1004", len(ents))
		}
		for i, w := range want {
			if ents[i].URL != w {
				t.Fatalf("entry %d = %s, want %s", i, ents[i].URL, w)
			}
		}
		if !ents[1003].IsDir || ents[1003].URL != "s3://many/p/zdir" {
			t.Errorf("last entry = %+v", ents[1003])
		}
		got, err := Glob(context.Background(), st, "s3://many/p/f100*.txt")
		if err != nil || len(got) != 3 {
			t.Errorf("Glob = %d matches, %v", len(got), err)
		}
	})
	t.Run("directory-marker", func(t *testing.T) {
		put := s3Put(t, raw, "conf", "")
		put("marker/", nil)
		put("marker/inner/", nil)
		info, err := st.Stat(context.Background(), "s3://conf/marker")
		if err != nil || !info.IsDir || info.URL != "s3://conf/marker" {
			t.Errorf("Stat(marker) = %+v, %v", info, err)
		}
		ents, err := st.List(context.Background(), "s3://conf/marker")
		if err != nil || len(ents) != 1 || ents[0].URL != "s3://conf/marker/inner" || !ents[0].IsDir {
			t.Errorf("List(marker) = %+v, %v", ents, err)
		}
	})
	t.Run("errors", func(t *testing.T) {
		ctx := context.Background()
		if _, err := st.Stat(ctx, "s3://no-such-bucket/x"); !errors.Is(err, ErrNotExist) {
			t.Errorf("missing bucket: %v", err)
		}
		if _, err := st.List(ctx, "s3://no-such-bucket"); !errors.Is(err, ErrNotExist) {
			t.Errorf("list missing bucket: %v", err)
		}
		bad, err := NewS3(ctx, S3Options{Key: testS3Key, Secret: "wrong-secret-value-123", EndpointURL: endpoint})
		if err != nil {
			t.Fatal(err)
		}
		for name, op := range map[string]func() error{
			"stat": func() error { _, err := bad.Stat(ctx, "s3://conf/data/a.csv"); return err },
			"read": func() error { _, err := bad.ReadRange(ctx, "s3://conf/data/a.csv", 0, 1); return err },
			"list": func() error { _, err := bad.List(ctx, "s3://conf/data"); return err },
		} {
			err := op()
			if !errors.Is(err, ErrPermission) {
				t.Errorf("%s with a wrong secret: want ErrPermission, got %v", name, err)
				continue
			}
			if strings.Contains(err.Error(), "wrong-secret-value-123") {
				t.Errorf("%s: message leaks the secret: %v", name, err)
			}
			if !strings.Contains(err.Error(), "s3://conf/data") {
				t.Errorf("%s: message does not name the URL: %v", name, err)
			}
		}
		// anon: unsigned requests are refused by this gateway (no public buckets).
		anon, err := Open("s3", map[string]any{"anon": true, "endpoint_url": endpoint})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := anon.Stat(ctx, "s3://conf/data/a.csv"); !errors.Is(err, ErrPermission) {
			t.Errorf("anonymous stat: want ErrPermission, got %v", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		port := freePort(t)
		down, err := NewS3(context.Background(), S3Options{Key: testS3Key, Secret: testS3Secret,
			EndpointURL: fmt.Sprintf("http://127.0.0.1:%d", port)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = down.Stat(context.Background(), "s3://conf/a.csv")
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("refused connection: want ErrUnavailable, got %v", err)
		}
		addr, _ := blackHole(t)
		hole, err := NewS3(context.Background(), S3Options{Anon: true, EndpointURL: "http://" + addr,
			Timeouts: Timeouts{Request: 300 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = hole.ReadRange(context.Background(), "s3://conf/a.csv", 0, 10)
		if !errors.Is(err, ErrUnavailable) || time.Since(start) > 3*time.Second {
			t.Errorf("black hole: %v after %v", err, time.Since(start))
		}
	})
}

// The SDK refuses a custom HTTP client it cannot install AWS_CA_BUNDLE
// into; NewS3 must work with the bundle set, against a real server.
func TestS3WithCABundle(t *testing.T) {
	s3TestEnv(t)
	bundle := "/etc/ssl/certs/ca-certificates.crt"
	if _, err := os.Stat(bundle); err != nil {
		t.Skip("no CA bundle on this machine")
	}
	t.Setenv("AWS_CA_BUNDLE", bundle)
	var sawRequest atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawRequest.Store(true)
		if r.URL.Path != "/bkt/obj.txt" { // path-style
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", `"abc"`)
		w.Header().Set("Content-Length", "5")
		w.Header().Set("Last-Modified", time.Unix(1e9, 0).UTC().Format(http.TimeFormat))
		w.WriteHeader(200)
	}))
	defer srv.Close()
	st, err := NewS3(context.Background(), S3Options{Anon: true, EndpointURL: srv.URL})
	if err != nil {
		t.Fatalf("NewS3 with AWS_CA_BUNDLE: %v", err)
	}
	info, err := st.Stat(context.Background(), "s3://bkt/obj.txt")
	if err != nil || info.Size != 5 || info.ETag != "abc" {
		t.Fatalf("Stat = %+v, %v", info, err)
	}
	if !sawRequest.Load() {
		t.Fatal("no request reached the server")
	}
	// A bundle that does not exist is reported, not ignored.
	t.Setenv("AWS_CA_BUNDLE", filepath.Join(t.TempDir(), "missing.pem"))
	if _, err := NewS3(context.Background(), S3Options{Anon: true, EndpointURL: srv.URL}); err == nil {
		t.Error("NewS3 with a missing CA bundle: no error")
	}
}

// The versitygw conformance run above also runs with AWS_CA_BUNDLE set
// (s3TestEnv); this one keeps the bundle and talks to versitygw directly.
func TestS3VersitygwWithCABundle(t *testing.T) {
	s3TestEnv(t)
	if os.Getenv("AWS_CA_BUNDLE") == "" {
		t.Skip("no CA bundle on this machine")
	}
	endpoint := startVersitygw(t)
	raw := rawS3(t, endpoint)
	createBucket(t, raw, "cab")
	s3Put(t, raw, "cab", "")("x.txt", []byte("hello"))
	st, err := NewS3(context.Background(), S3Options{Key: testS3Key, Secret: testS3Secret, EndpointURL: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, context.Background(), st, "s3://cab/x.txt", 1, 3); string(got) != "ell" {
		t.Errorf("read = %q", got)
	}
}

// A bucket in another region: S3 answers 301 with x-amz-bucket-region, and
// the store repeats the request there once and remembers.
func TestS3RegionRedirect(t *testing.T) {
	s3TestEnv(t)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		auth := r.Header.Get("Authorization")
		if !strings.Contains(auth, "/eu-west-2/s3/") {
			w.Header().Set("x-amz-bucket-region", "eu-west-2")
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		w.Header().Set("ETag", `"e"`)
		w.Header().Set("Content-Length", "3")
		w.WriteHeader(200)
	}))
	defer srv.Close()
	st, err := NewS3(context.Background(), S3Options{Key: testS3Key, Secret: testS3Secret, EndpointURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Stat(context.Background(), "s3://bkt/k")
	if err != nil || info.Size != 3 {
		t.Fatalf("Stat = %+v, %v", info, err)
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	if _, err := st.Stat(context.Background(), "s3://bkt/k2"); err != nil {
		t.Fatal(err)
	}
	if n := requests.Load(); n != 3 {
		t.Errorf("region not remembered: %d requests, want 3", n)
	}
}

// ifMatchIgnoringProxy stands in front of an S3 server and takes If-Match
// off every request (signing it again, as the header was signed), so the
// server answers a read of an old version with the object it has now.
func ifMatchIgnoringProxy(t *testing.T, endpoint string) string {
	t.Helper()
	target, err := neturl.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	creds := aws.Credentials{AccessKeyID: testS3Key, SecretAccessKey: testS3Secret}
	signer := v4.NewSigner()
	var signErr atomic.Value
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host // what the client signed
		if pr.Out.Header.Get("If-Match") == "" {
			return
		}
		pr.Out.Header.Del("If-Match")
		pr.Out.Header.Del("Authorization")
		if err := signer.SignHTTP(pr.Out.Context(), creds, pr.Out, pr.Out.Header.Get("X-Amz-Content-Sha256"),
			"s3", "us-east-1", time.Now()); err != nil {
			signErr.Store(err)
		}
	}}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if err, _ := signErr.Load().(error); err != nil {
			t.Errorf("proxy: signing: %v", err)
		}
	})
	return srv.URL
}

// versitygw behind a proxy that drops If-Match: a read of an old version
// is refused by its answer's ETag or size, never served new bytes.
func TestS3ReadVersionChecksTheAnswer(t *testing.T) {
	s3TestEnv(t)
	endpoint := startVersitygw(t)
	raw := rawS3(t, endpoint)
	createBucket(t, raw, "ver")
	put := s3Put(t, raw, "ver", "")
	st, err := NewS3(context.Background(), S3Options{Key: testS3Key, Secret: testS3Secret,
		EndpointURL: ifMatchIgnoringProxy(t, endpoint), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name string
		v2   []byte
	}{
		{"same-size", bytes.Repeat([]byte("2"), 4000)},
		{"longer", bytes.Repeat([]byte("2"), 5000)},
	} {
		t.Run(c.name, func(t *testing.T) {
			url := "s3://ver/" + c.name
			v1 := bytes.Repeat([]byte("1"), 4000)
			put(c.name, v1)
			info, err := st.Stat(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			if got := readVersion(ctx, st, info, 100, 200); got.err != nil || !bytes.Equal(got.b, v1[100:300]) {
				t.Fatalf("unchanged object: %d bytes, %v", len(got.b), got.err)
			}
			put(c.name, c.v2)
			got := readVersion(ctx, st, info, 1000, 200)
			if !errors.Is(got.err, ErrChanged) || IsRetryable(got.err) {
				t.Fatalf("read of the old version through a server that ignores If-Match: %d bytes (%q…), %v; want ErrChanged",
					len(got.b), trunc(got.b), got.err)
			}
			// The whole object, without a range, likewise.
			if got := readVersion(ctx, st, info, 0, -1); !errors.Is(got.err, ErrChanged) {
				t.Errorf("whole read of the old version: %d bytes, %v; want ErrChanged", len(got.b), got.err)
			}
		})
	}
}
