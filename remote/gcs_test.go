package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// gcsTestEnv keeps the tests off Google's endpoints, the metadata server
// and any credentials of the machine.
func gcsTestEnv(t *testing.T) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("STORAGE_EMULATOR_HOST", "")
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
	t.Setenv("GCE_METADATA_HOST", "127.0.0.1:1") // never the real one
	os.Unsetenv("STORAGE_EMULATOR_HOST")
}

func startFakeGCS(t *testing.T) *fakestorage.Server {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: "127.0.0.1", Port: uint16(freePort(t)),
		Writer: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

func gcsPut(srv *fakestorage.Server, bucket, prefix string) func(key string, data []byte) {
	return func(key string, data []byte) {
		name := key
		if prefix != "" {
			name = prefix + "/" + key
		}
		srv.CreateObject(fakestorage.Object{
			ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: name},
			Content:     append([]byte(nil), data...),
		})
	}
}

func TestGCSConformance(t *testing.T) {
	gcsTestEnv(t)
	srv := startFakeGCS(t)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "conf"})
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "root"})
	st, err := Open("gs", map[string]any{"token": "anon", "endpoint_url": srv.URL(), "project": "p"})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("prefix", func(t *testing.T) {
		runConformance(t, st, "gs://conf/data", gcsPut(srv, "conf", "data"), confOpts{})
	})
	t.Run("gcs-scheme-bucket-root", func(t *testing.T) {
		runConformance(t, WithRetry(st, RetryPolicy{}), "gcs://root", gcsPut(srv, "root", ""), confOpts{})
	})
	t.Run("generation-identity", func(t *testing.T) {
		info, err := st.Stat(context.Background(), "gs://conf/data/a.csv")
		if err != nil || !strings.HasPrefix(info.ETag, "gen:") {
			t.Errorf("Stat = %+v, %v; want a gen: ETag", info, err)
		}
	})
	t.Run("missing-bucket", func(t *testing.T) {
		if _, err := st.Stat(context.Background(), "gs://no-such-bucket/x"); !errors.Is(err, ErrNotExist) {
			t.Errorf("Stat: %v", err)
		}
		if _, err := st.List(context.Background(), "gs://no-such-bucket"); !errors.Is(err, ErrNotExist) {
			t.Errorf("List: %v", err)
		}
	})
}

// STORAGE_EMULATOR_HOST is honoured without any option.
func TestGCSEmulatorHostEnv(t *testing.T) {
	gcsTestEnv(t)
	srv := startFakeGCS(t)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "emu"})
	gcsPut(srv, "emu", "")("x/y.txt", []byte("hello"))
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(srv.URL(), "http://"))
	st, err := NewGCS(context.Background(), GCSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, context.Background(), st, "gs://emu/x/y.txt", 1, 3); string(got) != "ell" {
		t.Errorf("read = %q", got)
	}
}

// A fake JSON API that fails in chosen ways, for the error mapping.
func TestGCSErrorMapping(t *testing.T) {
	gcsTestEnv(t)
	var hits atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		var code int
		fmt.Sscanf(r.URL.Query().Get("code"), "%d", &code)
		switch {
		case strings.Contains(r.URL.Path, "/o/forbidden") || strings.HasSuffix(r.URL.Path, "/forbidden"):
			code = 403
		case strings.Contains(r.URL.Path, "/o/broken") || strings.HasSuffix(r.URL.Path, "/broken"):
			code = 503
		default:
			code = 404
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"error":{"code":%d,"message":"fake failure %d"}}`, code, code)
	}))
	defer api.Close()
	st, err := NewGCS(context.Background(), GCSOptions{Anon: true, Endpoint: api.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for obj, kind := range map[string]error{"forbidden": ErrPermission, "broken": ErrUnavailable, "missing": ErrNotExist} {
		url := "gs://bkt/" + obj
		_, serr := st.Stat(ctx, url)
		_, rerr := st.ReadRange(ctx, url, 0, 10)
		for _, err := range []error{serr, rerr} {
			if !errors.Is(err, kind) {
				t.Errorf("%s: want %v, got %v", obj, kind, err)
			}
			if err != nil && !strings.Contains(err.Error(), url) {
				t.Errorf("%s: message does not name the URL: %v", obj, err)
			}
		}
	}
	// The library's own retries are off: one request per 503 call.
	hits.Store(0)
	st.Stat(ctx, "gs://bkt/broken")
	if n := hits.Load(); n != 1 {
		t.Errorf("a 503 Stat made %d requests; the library must not retry", n)
	}
}

func TestGCSBlackHole(t *testing.T) {
	gcsTestEnv(t)
	addr, _ := blackHole(t)
	st, err := NewGCS(context.Background(), GCSOptions{Anon: true, Endpoint: "http://" + addr,
		Timeouts: Timeouts{Request: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for name, op := range map[string]func() error{
		"stat": func() error { _, err := st.Stat(context.Background(), "gs://b/o"); return err },
		"read": func() error { _, err := st.ReadRange(context.Background(), "gs://b/o", 0, 1); return err },
		"list": func() error { _, err := st.List(context.Background(), "gs://b/p"); return err },
	} {
		if err := op(); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: want ErrUnavailable, got %v", name, err)
		}
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %v", el)
	}
}

func TestGCSTokenOptions(t *testing.T) {
	gcsTestEnv(t)
	o, err := GCSOptionsFrom(map[string]any{"token": "anon"})
	if err != nil || !o.Anon {
		t.Errorf("anon: %+v, %v", o, err)
	}
	if _, err := GCSOptionsFrom(map[string]any{"token": "/no/such/file.json"}); err == nil {
		t.Error("missing credentials file: no error")
	}
	if _, err := GCSOptionsFrom(map[string]any{"token": "browser"}); err == nil {
		t.Error("browser token: no error")
	}
	f := filepath.Join(t.TempDir(), "sa.json")
	os.WriteFile(f, []byte(`{"type":"service_account"}`), 0o600)
	o, err = GCSOptionsFrom(map[string]any{"token": f, "project": "proj"})
	if err != nil || o.CredentialsFile != f || o.Project != "proj" {
		t.Errorf("file token: %+v, %v", o, err)
	}
	o, err = GCSOptionsFrom(map[string]any{"token": map[string]any{"type": "service_account", "private_key": "k"}})
	if err != nil || len(o.CredentialsJSON) == 0 {
		t.Errorf("dict token: %+v, %v", o, err)
	}
	if _, err := GCSOptionsFrom(map[string]any{"token": 12}); err == nil {
		t.Error("numeric token: no error")
	}
	// An unknown credentials type is refused before any network use.
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"type":"nonsense","private_key":"sekrit-key-material"}`), 0o600)
	if _, err := NewGCS(context.Background(), GCSOptions{CredentialsFile: bad}); err == nil ||
		strings.Contains(err.Error(), "sekrit-key-material") {
		t.Errorf("bad credentials type: %v", err)
	}
}

// fake-gcs-server behind a proxy that drops the generation a read asks
// for, so the server answers with the object it has now. The library
// reports the generation it asked for, not the answer's, so what the
// store can check is the size: a rewrite that changes it is refused.
func TestGCSReadVersionChecksTheAnswer(t *testing.T) {
	gcsTestEnv(t)
	srv := startFakeGCS(t)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "ver"})
	target, err := neturl.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	var stripped atomic.Int32
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		q := pr.Out.URL.Query()
		if q.Has("generation") {
			stripped.Add(1)
			q.Del("generation")
			pr.Out.URL.RawQuery = q.Encode()
		}
	}})
	t.Cleanup(proxy.Close)
	st, err := NewGCS(context.Background(), GCSOptions{Anon: true, Endpoint: proxy.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	put := gcsPut(srv, "ver", "")
	v1 := bytes.Repeat([]byte("1"), 4000)
	put("obj", v1)
	info, err := st.Stat(ctx, "gs://ver/obj")
	if err != nil {
		t.Fatal(err)
	}
	if got := readVersion(ctx, st, info, 100, 200); got.err != nil || !bytes.Equal(got.b, v1[100:300]) {
		t.Fatalf("unchanged object: %d bytes, %v", len(got.b), got.err)
	}
	put("obj", bytes.Repeat([]byte("2"), 5000))
	got := readVersion(ctx, st, info, 1000, 200)
	if !errors.Is(got.err, ErrChanged) || IsRetryable(got.err) {
		t.Fatalf("read of the old generation through a server that ignores it: %d bytes (%q…), %v; want ErrChanged",
			len(got.b), trunc(got.b), got.err)
	}
	if stripped.Load() == 0 {
		t.Error("no read asked for a generation: the proxy proved nothing")
	}
}
