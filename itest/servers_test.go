package itest

// Loopback servers for the remote-storage tests (remote_test.go): versitygw
// (S3) as a subprocess, fake-gcs-server (GCS) and net/http servers inside
// this test process. The intakefs daemon is always a process of its own, so
// serving from here never serves the daemon's own reads to itself.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// demoObject is one file put into every server: key is its name in the
// bucket (or below the HTTP server's /demo/), src its file in testdata/vega.
type demoObject struct{ key, src string }

var remoteDemoObjects = []demoObject{
	{"stocks.csv", "data/stocks.csv"},
	{"seattle-weather.csv", "data/seattle-weather.csv"},
	{"cars.json", "data/cars.json"},
	{"flights-3m.parquet", "data/flights-3m.parquet"},
	{"flights-2k.json", "data/flights-2k.json"},
	{"flights-5k.json", "data/flights-5k.json"},
	{"parts/seattle-weather-part1.csv", "parts/seattle-weather-part1.csv"},
	{"parts/seattle-weather-part2.csv", "parts/seattle-weather-part2.csv"},
	{"parts/seattle-weather-part3.csv", "parts/seattle-weather-part3.csv"},
}

// putDemo puts remoteDemoObjects with put.
func putDemo(t *testing.T, put func(key string, data []byte)) {
	t.Helper()
	for _, o := range remoteDemoObjects {
		b, err := os.ReadFile(vega(o.src))
		if err != nil {
			t.Fatal(err)
		}
		put(o.key, b)
	}
}

// remoteEnv keeps the daemons these tests start (they inherit this
// process's environment) off every real cloud endpoint and credential: no
// EC2 instance metadata, no shared AWS files or keys, no Google default
// credentials or metadata server, no emulator unless a test sets one.
// AWS_CA_BUNDLE stays set: S3 must work with it (issue 4); where the
// environment does not set it, the system bundle is used.
func remoteEnv(t *testing.T) {
	t.Helper()
	if os.Getenv("AWS_EC2_METADATA_DISABLED") == "" {
		t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "aws-credentials"))
	t.Setenv("CLOUDSDK_CONFIG", filepath.Join(dir, "gcloud"))
	t.Setenv("GCE_METADATA_HOST", "127.0.0.1:1") // never the real metadata server
	for _, v := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
		"AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION",
		"GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST"} {
		unsetEnv(t, v)
	}
	if os.Getenv("AWS_CA_BUNDLE") == "" {
		if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err == nil {
			t.Setenv("AWS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
		}
	}
}

// unsetEnv unsets v for the rest of the test.
func unsetEnv(t *testing.T, v string) {
	t.Setenv(v, "") // restores the old value at the end of the test
	os.Unsetenv(v)
}

// freePort is a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// deadAddr is a loopback address where nothing listens: connections are
// refused.
func deadAddr(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", freePort(t)) }

// blackHole listens on loopback and accepts connections but never answers
// (a hung server). It is closed at the end of the test.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go io.Copy(io.Discard, c) // read the request, say nothing
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// ---- S3: versitygw ----

// s3Server is a versitygw on loopback with its posix backend in Root: a
// bucket is a directory there, an object a file.
type s3Server struct {
	Endpoint    string // http://127.0.0.1:PORT
	Key, Secret string
	Root        string
}

// put stores an object by writing its file under Root.
func (s *s3Server) put(t *testing.T, bucket, key string, data []byte) {
	t.Helper()
	p := filepath.Join(s.Root, bucket, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

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
		if p := filepath.Join(dir, "bin", "versitygw"); fileExists(p) {
			return p
		}
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// startS3 starts versitygw with the given buckets (empty directories to
// fill with put) and stops it when the test ends. A missing versitygw skips
// the test, or fails it under CI.
func startS3(t *testing.T, buckets ...string) *s3Server {
	t.Helper()
	bin := versitygwBinary()
	if bin == "" {
		unavailable(t, "versitygw not found on PATH or in $(go env GOPATH)/bin (scripts/setup.sh installs it)")
	}
	s := &s3Server{Key: "AKIAITESTKEY0000INTAKEFS", Secret: "itest-S3-secret-7f3a9c1e5b2d", Root: t.TempDir()}
	for _, b := range buckets {
		if err := os.Mkdir(filepath.Join(s.Root, b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var lastErr error
	for try := 0; try < 3; try++ {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		cmd := exec.Command(bin, "--access", s.Key, "--secret", s.Secret, "--port", addr, "posix", s.Root)
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start versitygw: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		lastErr = nil
		for deadline := time.Now().Add(15 * time.Second); lastErr == nil; {
			select {
			case <-exited:
				lastErr = fmt.Errorf("versitygw exited:\n%s", out.String())
				continue
			default:
			}
			if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
				c.Close()
				t.Cleanup(stop)
				s.Endpoint = "http://" + addr
				return s
			}
			if time.Now().After(deadline) {
				lastErr = fmt.Errorf("versitygw not listening on %s after 15s:\n%s", addr, out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		stop()
	}
	t.Fatal(lastErr)
	return nil
}

// ---- GCS: fake-gcs-server ----

// startGCS runs fake-gcs-server on loopback inside this process, with the
// given buckets, until the test ends.
func startGCS(t *testing.T, buckets ...string) *fakestorage.Server {
	t.Helper()
	var srv *fakestorage.Server
	var err error
	for try := 0; try < 3; try++ { // the free port may be taken meanwhile
		srv, err = fakestorage.NewServerWithOptions(fakestorage.Options{
			Scheme: "http", Host: "127.0.0.1", Port: uint16(freePort(t)), Writer: io.Discard,
		})
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("fake-gcs-server: %v", err)
	}
	t.Cleanup(srv.Stop)
	for _, b := range buckets {
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b})
	}
	return srv
}

func gcsPut(srv *fakestorage.Server, bucket, key string, data []byte) {
	srv.CreateObject(fakestorage.Object{
		ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: key, ContentType: "application/octet-stream"},
		Content:     append([]byte(nil), data...),
	})
}

// ---- HTTP ----

// fileServer is an HTTP server on loopback serving the files under Root
// (Range requests, Last-Modified) to requests that carry
// "Authorization: Bearer Token"; others get 403.
type fileServer struct {
	URL   string // http://127.0.0.1:PORT
	Root  string
	Token string
}

func startFileServer(t *testing.T) *fileServer {
	t.Helper()
	fsrv := &fileServer{Root: t.TempDir(), Token: "itest-http-token-4c8e2a6f0d"}
	files := http.FileServer(http.Dir(fsrv.Root))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+fsrv.Token {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	fsrv.URL = srv.URL
	return fsrv
}

func (s *fileServer) put(t *testing.T, key string, data []byte) {
	t.Helper()
	p := filepath.Join(s.Root, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// dyingServer is an HTTP server whose "dying" files stop short: once
// budget bytes of such a file have been sent (over all responses), every
// response to it — whose Content-Length promises more — stalls without
// another byte (mode "stall") or has its connection closed (mode "close").
// HEAD and the other files are served normally, so the object looks fine
// until it is read.
type dyingServer struct {
	URL    string
	budget int64
	files  map[string]dyingFile // by URL path
	stop   chan struct{}

	mu   sync.Mutex
	sent map[string]int64
	cut  map[string]int // responses cut short, by path
}

type dyingFile struct {
	data []byte
	mode string // "", "stall" or "close"
}

func startDyingServer(t *testing.T, budget int64, files map[string]dyingFile) *dyingServer {
	t.Helper()
	d := &dyingServer{budget: budget, files: files, stop: make(chan struct{}),
		sent: map[string]int64{}, cut: map[string]int{}}
	modTime := time.Now().Add(-time.Hour).Truncate(time.Second)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := d.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if f.mode == "" || r.Method == http.MethodHead {
			http.ServeContent(w, r, path.Base(r.URL.Path), modTime, bytes.NewReader(f.data))
			return
		}
		cw := &cutWriter{ResponseWriter: w, d: d, path: r.URL.Path, mode: f.mode, ctx: r.Context()}
		http.ServeContent(cw, r, path.Base(r.URL.Path), modTime, bytes.NewReader(f.data))
	}))
	// Cleanups run last-first: release stalled handlers, then close.
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(d.stop) })
	d.URL = srv.URL
	return d
}

// cutResponses is how many responses to path were cut short so far.
func (d *dyingServer) cutResponses(path string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cut[path]
}

// cutWriter passes a response body through until the file's budget is
// spent, then dies as its mode says.
type cutWriter struct {
	http.ResponseWriter
	d    *dyingServer
	path string
	mode string
	ctx  context.Context
	dead bool
}

var errDied = fmt.Errorf("server died (test)")

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.dead {
		return 0, errDied
	}
	c.d.mu.Lock()
	allowed := c.d.budget - c.d.sent[c.path]
	if allowed > int64(len(p)) {
		allowed = int64(len(p))
	}
	if allowed < 0 {
		allowed = 0
	}
	c.d.sent[c.path] += allowed
	if allowed < int64(len(p)) {
		c.d.cut[c.path]++
	}
	c.d.mu.Unlock()
	n, err := c.ResponseWriter.Write(p[:allowed])
	if err != nil || n == len(p) {
		return n, err
	}
	c.dead = true
	rc := http.NewResponseController(c.ResponseWriter)
	_ = rc.Flush() // the headers and what was allowed go out
	switch c.mode {
	case "stall":
		select {
		case <-c.ctx.Done(): // the client gave up
		case <-c.d.stop:
		}
	case "close":
		if conn, _, err := rc.Hijack(); err == nil {
			conn.Close()
		}
	}
	return n, errDied
}
