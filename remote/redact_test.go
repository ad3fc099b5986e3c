package remote

import (
	"errors"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"s3://bucket/key.csv", "s3://bucket/key.csv"},
		{"/local/path?x", "/local/path?x"},
		{"https://user:pass@host.example/a/b.csv", "https://***@host.example/a/b.csv"},
		{"https://ghp_tokenonly@host/x", "https://***@host/x"},
		{"https://host/x@y/z", "https://host/x@y/z"}, // @ in the path is no userinfo
		{"https://h/o?X-Amz-Signature=abc&X-Amz-Credential=AKIA%2F1&X-Amz-Expires=60",
			"https://h/o?X-Amz-Signature=***&X-Amz-Credential=***&X-Amz-Expires=60"},
		{"https://h/o?token=t1&access_token=t2&key=k&sig=s&password=p&page=2#frag",
			"https://h/o?token=***&access_token=***&key=***&sig=***&password=***&page=2#frag"},
		{"https://h/o?X-Goog-Signature=s&GoogleAccessId=a", "https://h/o?X-Goog-Signature=***&GoogleAccessId=a"},
		{"https://h/o?flag&x=1", "https://h/o?flag&x=1"},
		{"http://u:p@127.0.0.1:9000", "http://***@127.0.0.1:9000"},
	}
	for _, c := range cases {
		if got := RedactURL(c.in); got != c.want {
			t.Errorf("RedactURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestRedactText(t *testing.T) {
	in := `Get "https://bob:hunter22@h/x?sig=abc123": dial tcp; Authorization: Bearer eyJhbGciOi.payload.sig; ` +
		`secret=s3cr3tvalue token: "tokval99" key AKIAIOSFODNN7EXAMPLE and my-literal-secret`
	out := Redact(in, "my-literal-secret", "ab") // "ab" is too short to hide
	for _, leak := range []string{"hunter22", "bob", "abc123", "eyJhbGciOi", "s3cr3tvalue", "tokval99", "AKIAIOSFODNN7EXAMPLE", "my-literal-secret"} {
		if strings.Contains(out, leak) {
			t.Errorf("Redact leaks %q: %s", leak, out)
		}
	}
	for _, keep := range []string{"https://***@h/x", "dial tcp", "Bearer ***", "secret=***"} {
		if !strings.Contains(out, keep) {
			t.Errorf("Redact lost %q: %s", keep, out)
		}
	}
	if Redact("plain message about a file", "") != "plain message about a file" {
		t.Error("Redact changed an innocent message")
	}
}

func TestRedactOptions(t *testing.T) {
	in := map[string]any{
		"anon":          false,
		"key":           "AKIAXXXX",
		"secret":        "sssss",
		"token":         "ttttt",
		"profile":       "dev",
		"client_kwargs": map[string]any{"endpoint_url": "http://u:pw@minio:9000", "region_name": "eu-west-1", "aws_secret_access_key": "zzz"},
		"headers":       map[string]any{"Authorization": "Bearer abc", "Accept": "text/csv"},
		"s3":            map[string]any{"secret": "nested"},
		"list":          []any{"https://a:b@h/x"},
	}
	out := RedactOptions(in)
	want := map[string]any{"key": Redacted, "secret": Redacted, "token": Redacted, "profile": "dev", "anon": false}
	for k, v := range want {
		if out[k] != v {
			t.Errorf("%s = %v, want %v", k, out[k], v)
		}
	}
	ck := out["client_kwargs"].(map[string]any)
	if ck["endpoint_url"] != "http://***@minio:9000" || ck["region_name"] != "eu-west-1" || ck["aws_secret_access_key"] != Redacted {
		t.Errorf("client_kwargs = %v", ck)
	}
	h := out["headers"].(map[string]any)
	if h["Authorization"] != Redacted || h["Accept"] != "text/csv" {
		t.Errorf("headers = %v", h)
	}
	if out["s3"].(map[string]any)["secret"] != Redacted {
		t.Errorf("nested = %v", out["s3"])
	}
	if out["list"].([]any)[0] != "https://***@h/x" {
		t.Errorf("list = %v", out["list"])
	}
	if in["secret"] != "sssss" {
		t.Error("RedactOptions changed its input")
	}
	if g := RedactOptions(map[string]any{"token": "anon"}); g["token"] != "anon" {
		t.Errorf("gcsfs token anon = %v", g["token"])
	}
}

func TestOpErrorShape(t *testing.T) {
	under := errors.New(`Get "https://x:topsecret@h/o": connection refused`)
	err := newOpError("read", "https://x:topsecret@h/o?token=abc", ErrUnavailable, under.Error(), under, []string{"topsecret"})
	msg := err.Error()
	if strings.Contains(msg, "topsecret") || strings.Contains(msg, "abc") {
		t.Errorf("leak: %s", msg)
	}
	if !strings.HasPrefix(msg, "read https://***@h/o?token=***: storage unavailable (") {
		t.Errorf("message = %s", msg)
	}
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, under) {
		t.Error("errors.Is lost the sentinel or the cause")
	}
	// Unwrapping to the cause also hides the secret.
	var r *redacted
	if !errors.As(err, &r) || strings.Contains(r.Error(), "topsecret") {
		t.Errorf("wrapped cause = %v", r)
	}
}
