package remote

import (
	"errors"
	"reflect"
	"testing"
)

func TestSplitOptionsPlain(t *testing.T) {
	opts := map[string]any{"anon": true, "s3": map[string]any{"requester_pays": true, "anon": false}}
	tg := SplitOptions("s3://bucket/key.csv", opts)
	if tg.Scheme != "s3" || tg.URL != "s3://bucket/key.csv" || tg.Outer != nil {
		t.Fatalf("target = %+v", tg)
	}
	// Nested options apply, top-level ones too, and win (as in fsspec).
	want := map[string]any{"anon": true, "requester_pays": true}
	if !reflect.DeepEqual(tg.Options, want) {
		t.Errorf("options = %v, want %v", tg.Options, want)
	}
	if _, ok := opts["s3"]; !ok {
		t.Error("SplitOptions changed its input")
	}
}

func TestSplitOptionsChained(t *testing.T) {
	opts := map[string]any{
		"s3":          map[string]any{"anon": true},
		"simplecache": map[string]any{"cache_storage": "/tmp/c"},
		"same_names":  true,
	}
	tg := SplitOptions("simplecache::s3://bucket/key.csv", opts)
	if tg.Scheme != "s3" || tg.URL != "s3://bucket/key.csv" {
		t.Fatalf("target = %+v", tg)
	}
	if !reflect.DeepEqual(tg.Options, map[string]any{"anon": true}) {
		t.Errorf("s3 options = %v", tg.Options)
	}
	if len(tg.Outer) != 1 || tg.Outer[0].Protocol != "simplecache" || tg.Outer[0].Path != "" ||
		!reflect.DeepEqual(tg.Outer[0].Options, map[string]any{"cache_storage": "/tmp/c", "same_names": true}) {
		t.Errorf("outer = %+v", tg.Outer)
	}

	tg = SplitOptions("zip://inner/a.csv::https://host/archive.zip", map[string]any{
		"https": map[string]any{"headers": map[string]any{"A": "b"}}})
	if tg.Scheme != "https" || tg.URL != "https://host/archive.zip" || tg.Outer[0].Protocol != "zip" || tg.Outer[0].Path != "inner/a.csv" {
		t.Errorf("zip chain = %+v", tg)
	}
	if _, ok := tg.Options["headers"]; !ok {
		t.Errorf("https options = %v", tg.Options)
	}

	tg = SplitOptions("blockcache::/data/local.csv", nil)
	if tg.Scheme != "file" || tg.URL != "/data/local.csv" || len(tg.Outer) != 1 {
		t.Errorf("local chain = %+v", tg)
	}
	tg = SplitOptions("/data/x.csv", map[string]any{"auto_mkdir": true})
	if tg.Scheme != "file" || tg.URL != "/data/x.csv" || tg.Options["auto_mkdir"] != true {
		t.Errorf("local = %+v", tg)
	}
	tg = SplitOptions("GS://b/o", nil)
	if tg.Scheme != "gs" {
		t.Errorf("scheme case: %+v", tg)
	}
}

func TestS3OptionsFrom(t *testing.T) {
	o, err := S3OptionsFrom(map[string]any{
		"anon": "false", "key": "K", "secret": "S", "token": "T", "profile": "p",
		"client_kwargs": map[string]any{"endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-west-1"},
		"config_kwargs": map[string]any{"retries": 3}, "requester_pays": true, "default_block_size": 1 << 20,
	})
	want := S3Options{Key: "K", Secret: "S", Token: "T", Profile: "p", EndpointURL: "http://127.0.0.1:9000",
		Region: "eu-west-1", RequesterPays: true}
	if err != nil || !reflect.DeepEqual(o, want) {
		t.Errorf("S3OptionsFrom = %+v, %v; want %+v", o, err, want)
	}
	o, _ = S3OptionsFrom(map[string]any{"endpoint_url": "http://a", "client_kwargs": map[string]any{"endpoint_url": "http://b",
		"aws_access_key_id": "K2", "aws_secret_access_key": "S2"}, "anon": true})
	if o.EndpointURL != "http://a" || o.Key != "K2" || o.Secret != "S2" || !o.Anon {
		t.Errorf("precedence: %+v", o)
	}
	if _, err := S3OptionsFrom(map[string]any{"anon": "maybe"}); err == nil {
		t.Error("bad bool accepted")
	}
	if _, err := S3OptionsFrom(map[string]any{"client_kwargs": "x"}); err == nil {
		t.Error("bad client_kwargs accepted")
	}
}

func TestHTTPOptionsFrom(t *testing.T) {
	o, err := HTTPOptionsFrom(map[string]any{"headers": map[string]any{"A": "1"},
		"client_kwargs": map[string]any{"headers": map[string]any{"B": 2, "A": "0"}}})
	if err != nil || !reflect.DeepEqual(o.Headers, map[string]string{"A": "1", "B": "2"}) {
		t.Errorf("HTTPOptionsFrom = %+v, %v", o, err)
	}
}

func TestOpen(t *testing.T) {
	s3TestEnv(t)
	for scheme, typ := range map[string]any{"": Local{}, "file": Local{}, "local": Local{},
		"http": (*HTTP)(nil), "HTTPS": (*HTTP)(nil), "s3": (*S3)(nil), "s3a": (*S3)(nil)} {
		opts := map[string]any{}
		if scheme == "s3" || scheme == "s3a" {
			opts["anon"] = true
		}
		s, err := Open(scheme, opts)
		if err != nil {
			t.Errorf("Open(%q): %v", scheme, err)
			continue
		}
		if reflect.TypeOf(s) != reflect.TypeOf(typ) {
			t.Errorf("Open(%q) = %T", scheme, s)
		}
	}
	gcsTestEnv(t)
	s, err := Open("gcs", map[string]any{"token": "anon"})
	if _, ok := s.(*GCS); err != nil || !ok {
		t.Errorf("Open(gcs) = %T, %v", s, err)
	}
	a, _ := Open("s3", map[string]any{"anon": true, "client_kwargs": map[string]any{"region_name": "eu-west-1"}})
	b, _ := Open("s3a", map[string]any{"client_kwargs": map[string]any{"region_name": "eu-west-1"}, "anon": true})
	c, _ := Open("s3", map[string]any{"anon": true, "client_kwargs": map[string]any{"region_name": "eu-west-2"}})
	if a != b || a == c {
		t.Error("Open does not share stores by options")
	}
	if _, err := Open("ftp", nil); !errors.Is(err, ErrNotSupported) {
		t.Errorf("Open(ftp): %v", err)
	}
	if _, err := Open("s3", map[string]any{"anon": 3.5}); err == nil {
		t.Error("Open with a bad option: no error")
	}
	if len(OptionNames("s3")) == 0 || len(OptionNames("gs")) == 0 || len(OptionNames("https")) == 0 {
		t.Error("OptionNames empty")
	}
}
