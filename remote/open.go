package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Config is what Open needs besides storage_options.
type Config struct {
	// Timeouts bound each request of a remote store; zero fields take
	// DefaultTimeouts.
	Timeouts Timeouts
}

// Open builds the Store for a URL scheme from the storage_options Intake
// and fsspec use for it (already split per protocol by SplitOptions):
//
//	"", "file", "local"  Local (options ignored)
//	"http", "https"      HTTP: headers, client_kwargs.headers
//	"s3", "s3a"          S3: anon, key, secret, token, profile, endpoint_url,
//	                     client_kwargs {endpoint_url, region_name,
//	                     aws_access_key_id, aws_secret_access_key,
//	                     aws_session_token}, requester_pays; config_kwargs
//	                     and other s3fs options are ignored
//	"gs", "gcs"          GCS: token ("anon", a JSON file path, a JSON
//	                     object, or google_default/cache/cloud/absent for
//	                     default credentials), project, requester_pays,
//	                     endpoint_url (alias endpoint)
//
// Unknown options are ignored, as most are fsspec caching/tuning knobs;
// a known option of the wrong type is an error. The store has no retries:
// wrap it with WithRetry(store, DefaultRetryPolicy). Stores are safe for
// concurrent use, and the same (scheme, opts) gives the same store.
// Open is OpenConfig with a background context and DefaultTimeouts.
func Open(scheme string, opts map[string]any) (Store, error) {
	return OpenConfig(context.Background(), scheme, opts, Config{})
}

var openCache sync.Map // string → Store

// OpenConfig is Open with a context (for loading credentials) and a
// Config.
func OpenConfig(ctx context.Context, scheme string, opts map[string]any, cfg Config) (Store, error) {
	scheme = strings.ToLower(scheme)
	key := ""
	if b, err := json.Marshal(struct {
		S string
		O map[string]any
		C Config
	}{canonicalScheme(scheme), opts, cfg}); err == nil {
		key = string(b)
		if s, ok := openCache.Load(key); ok {
			return s.(Store), nil
		}
	}
	s, err := open(ctx, scheme, opts, cfg)
	if err != nil {
		return nil, err
	}
	if key != "" {
		if prev, loaded := openCache.LoadOrStore(key, s); loaded {
			return prev.(Store), nil
		}
	}
	return s, nil
}

func canonicalScheme(s string) string {
	switch s {
	case "", "file", "local":
		return "file"
	case "http", "https":
		return "http"
	case "s3", "s3a":
		return "s3"
	case "gs", "gcs":
		return "gs"
	}
	return s
}

func open(ctx context.Context, scheme string, opts map[string]any, cfg Config) (Store, error) {
	switch canonicalScheme(scheme) {
	case "file":
		return Local{}, nil
	case "http":
		o, err := HTTPOptionsFrom(opts)
		if err != nil {
			return nil, err
		}
		o.Timeouts = cfg.Timeouts
		return NewHTTP(o), nil
	case "s3":
		o, err := S3OptionsFrom(opts)
		if err != nil {
			return nil, err
		}
		o.Timeouts = cfg.Timeouts
		return NewS3(ctx, o)
	case "gs":
		o, err := GCSOptionsFrom(opts)
		if err != nil {
			return nil, err
		}
		o.Timeouts = cfg.Timeouts
		return NewGCS(ctx, o)
	}
	return nil, fmt.Errorf("%w: no storage backend for protocol %q", ErrNotSupported, scheme)
}

// HTTPOptionsFrom reads fsspec HTTP storage_options: headers (also under
// client_kwargs).
func HTTPOptionsFrom(opts map[string]any) (HTTPOptions, error) {
	var o HTTPOptions
	h := map[string]string{}
	ck, err := optMap(opts, "client_kwargs")
	if err != nil {
		return o, err
	}
	for _, src := range []map[string]any{ck, opts} {
		m, err := optStringMap(src, "headers")
		if err != nil {
			return o, err
		}
		for k, v := range m {
			h[k] = v
		}
	}
	if len(h) > 0 {
		o.Headers = h
	}
	return o, nil
}

// S3OptionsFrom reads s3fs storage_options; see Open for the names.
func S3OptionsFrom(opts map[string]any) (S3Options, error) {
	var o S3Options
	var err error
	ck, err := optMap(opts, "client_kwargs")
	if err != nil {
		return o, err
	}
	if o.Anon, err = optBool(opts, "anon"); err != nil {
		return o, err
	}
	if o.RequesterPays, err = optBool(opts, "requester_pays"); err != nil {
		return o, err
	}
	str := func(dst *string, m map[string]any, names ...string) {
		for _, n := range names {
			if err != nil || *dst != "" {
				return
			}
			*dst, err = optString(m, n)
		}
	}
	str(&o.Key, opts, "key", "username", "aws_access_key_id")
	str(&o.Key, ck, "aws_access_key_id")
	str(&o.Secret, opts, "secret", "password", "aws_secret_access_key")
	str(&o.Secret, ck, "aws_secret_access_key")
	str(&o.Token, opts, "token", "aws_session_token")
	str(&o.Token, ck, "aws_session_token")
	str(&o.Profile, opts, "profile", "profile_name")
	str(&o.EndpointURL, opts, "endpoint_url")
	str(&o.EndpointURL, ck, "endpoint_url")
	str(&o.Region, ck, "region_name")
	str(&o.Region, opts, "region_name", "region")
	return o, err
}

// GCSOptionsFrom reads gcsfs storage_options; see Open for the names.
func GCSOptionsFrom(opts map[string]any) (GCSOptions, error) {
	var o GCSOptions
	var err error
	if o.Anon, err = optBool(opts, "anon"); err != nil {
		return o, err
	}
	if o.RequesterPays, err = optBool(opts, "requester_pays"); err != nil {
		return o, err
	}
	if o.Project, err = optString(opts, "project"); err != nil {
		return o, err
	}
	if o.Endpoint, err = optString(opts, "endpoint_url"); err != nil {
		return o, err
	}
	if o.Endpoint == "" {
		if o.Endpoint, err = optString(opts, "endpoint"); err != nil {
			return o, err
		}
	}
	switch tok := opts["token"].(type) {
	case nil:
	case string:
		switch tok {
		case "", "google_default", "cache", "cloud":
		case "anon":
			o.Anon = true
		case "browser":
			return o, fmt.Errorf("storage option token: %q (interactive login) is not supported; use a service-account file", tok)
		default:
			if _, err := os.Stat(tok); err != nil {
				return o, fmt.Errorf("storage option token: credentials file: %v", err)
			}
			o.CredentialsFile = tok
		}
	case map[string]any:
		b, err := json.Marshal(tok)
		if err != nil {
			return o, fmt.Errorf("storage option token: %v", err)
		}
		o.CredentialsJSON = b
	default:
		return o, fmt.Errorf("storage option token: want a string or a mapping, got %T", tok)
	}
	return o, nil
}

func optBool(m map[string]any, name string) (bool, error) {
	switch v := m[name].(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	case int:
		return v != 0, nil
	case string:
		switch strings.ToLower(v) {
		case "true", "yes", "1":
			return true, nil
		case "false", "no", "0", "":
			return false, nil
		}
	}
	return false, fmt.Errorf("storage option %s: want a boolean, got %v", name, m[name])
}

func optString(m map[string]any, name string) (string, error) {
	switch v := m[name].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case int:
		return strconv.Itoa(v), nil
	}
	return "", fmt.Errorf("storage option %s: want a string, got %T", name, m[name])
}

func optMap(m map[string]any, name string) (map[string]any, error) {
	switch v := m[name].(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return v, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[fmt.Sprint(k)] = x
		}
		return out, nil
	}
	return nil, fmt.Errorf("storage option %s: want a mapping, got %T", name, m[name])
}

func optStringMap(m map[string]any, name string) (map[string]string, error) {
	if sm, ok := m[name].(map[string]string); ok {
		return sm, nil
	}
	am, err := optMap(m, name)
	if err != nil || am == nil {
		return nil, err
	}
	out := make(map[string]string, len(am))
	for k, v := range am {
		out[k] = fmt.Sprint(v)
	}
	return out, nil
}

// Layer is one protocol of an fsspec URL chain such as
// "simplecache::s3://bucket/key" or "zip://member.csv::https://host/a.zip".
type Layer struct {
	Protocol string         // "simplecache", "zip", … ("file" for a bare path)
	Path     string         // the layer's path without its protocol ("member.csv"; "" for caches)
	Options  map[string]any // the options fsspec gives this layer
}

// Target is where a possibly chained fsspec URL's bytes live.
type Target struct {
	Scheme  string         // the innermost protocol, lower case: "file", "http", "https", "s3", "gs", "gcs", …
	URL     string         // the innermost URL as written ("s3://bucket/key"; a local path as is)
	Options map[string]any // storage options for Open(Scheme, Options)
	Outer   []Layer        // the layers around it, outermost first; empty for a plain URL
}

var protocolWord = regexp.MustCompile(`^[a-z][a-z0-9+\-]*$`)

// knownProtocols are fsspec protocol names; a top-level storage option
// with such a name and a mapping value holds that protocol's options and is
// not itself an option of the outermost layer.
var knownProtocols = map[string]bool{
	"file": true, "local": true, "http": true, "https": true, "s3": true, "s3a": true,
	"gs": true, "gcs": true, "simplecache": true, "filecache": true, "blockcache": true,
	"cached": true, "zip": true, "tar": true, "memory": true, "abfs": true, "az": true,
	"adl": true, "hdfs": true, "webhdfs": true, "sftp": true, "ssh": true, "ftp": true,
	"github": true, "reference": true, "dir": true, "oci": true, "wasb": true,
}

// SplitOptions resolves an fsspec URL, possibly chained with "::", and the
// storage_options given with it, as fsspec's url_to_fs does: each layer
// gets the options nested under its protocol's name
// (storage_options: {s3: {anon: true}, simplecache: {…}}), and the
// outermost layer — the only layer of a plain URL — also gets the
// top-level options. So for "s3://b/k" both {anon: true} and
// {s3: {anon: true}} apply; for "simplecache::s3://b/k" only the nested
// form reaches S3, as in fsspec. Options are not copied deeply: treat them
// as read-only.
func SplitOptions(url string, opts map[string]any) Target {
	var bits []string
	if strings.Contains(url, "::") {
		for _, p := range strings.Split(url, "::") {
			if !strings.Contains(p, "://") && protocolWord.MatchString(p) {
				p += "://"
			}
			bits = append(bits, p)
		}
	} else {
		bits = []string{url}
	}
	layers := make([]Layer, len(bits))
	for i, bit := range bits {
		proto, path := "file", bit
		if p, rest, ok := strings.Cut(bit, "://"); ok && protocolWord.MatchString(strings.ToLower(p)) {
			proto, path = strings.ToLower(p), rest
		}
		kw := map[string]any{}
		if nested, ok := opts[proto].(map[string]any); ok {
			for k, v := range nested {
				kw[k] = v
			}
		}
		if i == 0 {
			for k, v := range opts {
				if _, isMap := v.(map[string]any); isMap && knownProtocols[k] {
					continue
				}
				kw[k] = v
			}
		}
		layers[i] = Layer{Protocol: proto, Path: path, Options: kw}
	}
	inner := layers[len(layers)-1]
	t := Target{Scheme: inner.Protocol, URL: bits[len(bits)-1], Options: inner.Options, Outer: layers[:len(layers)-1]}
	if len(t.Outer) == 0 {
		t.Outer = nil
	}
	return t
}

// OptionNames lists the storage option names Open understands for a
// scheme, sorted (for documentation and for warning about the rest).
func OptionNames(scheme string) []string {
	var n []string
	switch canonicalScheme(strings.ToLower(scheme)) {
	case "http":
		n = []string{"headers", "client_kwargs.headers"}
	case "s3":
		n = []string{"anon", "key", "secret", "token", "username", "password", "profile", "profile_name",
			"endpoint_url", "region_name", "requester_pays", "client_kwargs.endpoint_url",
			"client_kwargs.region_name", "client_kwargs.aws_access_key_id",
			"client_kwargs.aws_secret_access_key", "client_kwargs.aws_session_token"}
	case "gs":
		n = []string{"token", "anon", "project", "requester_pays", "endpoint_url", "endpoint"}
	}
	sort.Strings(n)
	return n
}
