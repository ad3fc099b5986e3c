package remote

import (
	"regexp"
	"sort"
	"strings"
)

// Redacted is what every hidden secret is replaced with.
const Redacted = "***"

// sensitiveName reports whether a query parameter, header or option name
// usually carries a secret.
func sensitiveName(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "key", "sig", "x-api-key", "cookie", "set-cookie", "pass", "pwd":
		return true
	}
	for _, w := range []string{"secret", "password", "passwd", "token", "signature", "credential",
		"access_key", "accesskey", "api_key", "apikey", "private", "auth"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// RedactURL hides the credentials a URL may carry: its userinfo (user and
// password) and the values of query parameters that look like secrets
// (signatures, tokens, keys, passwords: X-Amz-Signature, X-Goog-Credential,
// sig, token, access_token, key, …). Everything else is kept byte for
// byte, so the result still identifies the object. A string that is not a
// URL comes back unchanged.
func RedactURL(u string) string {
	i := strings.Index(u, "://")
	if i <= 0 {
		return u
	}
	rest := u[i+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority := rest[:end]
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		authority = Redacted + authority[at:]
	}
	tail := rest[end:]
	q := strings.IndexByte(tail, '?')
	if q < 0 {
		return u[:i+3] + authority + tail
	}
	pathPart, query := tail[:q], tail[q+1:]
	frag := ""
	if h := strings.IndexByte(query, '#'); h >= 0 {
		query, frag = query[:h], query[h:]
	}
	pairs := strings.Split(query, "&")
	for k, p := range pairs {
		name, _, hasValue := strings.Cut(p, "=")
		if hasValue && sensitiveName(unescapeName(name)) {
			pairs[k] = name + "=" + Redacted
		}
	}
	return u[:i+3] + authority + pathPart + "?" + strings.Join(pairs, "&") + frag
}

func unescapeName(s string) string {
	s = strings.ReplaceAll(s, "%2D", "-")
	s = strings.ReplaceAll(s, "%2d", "-")
	return strings.ReplaceAll(s, "%5F", "_")
}

var (
	urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.\-]*://[^\s"'<>` + "`" + `]+`)
	// "Bearer abc", "Basic dXNlcjpwYXNz"
	authInText = regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{4,}`)
	// secret=..., "password": "...", token: ...
	assignInText = regexp.MustCompile(`(?i)\b([a-z_\-]*(?:secret|password|passwd|token|access_key|api_key|signature|credential)[a-z_\-]*)(["']?\s*[:=]\s*["']?)([^\s"'&,;}\]]+)`)
	// AWS access key ids.
	awsKeyInText = regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`)
)

// Redact hides secrets in a free-text message: every literal in secrets
// (values of 3 characters or more; shorter ones cannot be told from
// ordinary text), credentials in any URL it contains (see RedactURL),
// "Bearer …"/"Basic …" authorisation values, name=value or name: value
// pairs whose name says secret/password/token/key, and AWS access key ids.
func Redact(s string, secrets ...string) string {
	if s == "" {
		return s
	}
	// Longest first, so a secret containing another is hidden whole.
	ss := make([]string, 0, len(secrets))
	for _, x := range secrets {
		if len(x) >= 3 {
			ss = append(ss, x)
		}
	}
	sort.Slice(ss, func(i, j int) bool { return len(ss[i]) > len(ss[j]) })
	for _, x := range ss {
		s = strings.ReplaceAll(s, x, Redacted)
	}
	s = urlInText.ReplaceAllStringFunc(s, RedactURL)
	s = authInText.ReplaceAllString(s, "$1 "+Redacted)
	s = assignInText.ReplaceAllStringFunc(s, func(m string) string {
		sub := assignInText.FindStringSubmatch(m)
		if sub[3] == Redacted {
			return m
		}
		return sub[1] + sub[2] + Redacted
	})
	s = awsKeyInText.ReplaceAllString(s, Redacted)
	return s
}

// gcsTokenWords are the gcsfs "token" values that name a method, not a
// secret, and are kept by RedactOptions.
var gcsTokenWords = map[string]bool{"anon": true, "google_default": true, "cache": true,
	"cloud": true, "browser": true, "": true}

// RedactOptions returns a deep copy of Intake/fsspec storage_options with
// secrets replaced by Redacted: values of keys that name a secret (key,
// secret, token, password, …, client_kwargs' aws_secret_access_key, headers
// such as Authorization), and credentials inside any URL-valued string.
// A gcsfs token that names a method ("anon", "google_default", …) is kept.
func RedactOptions(opts map[string]any) map[string]any {
	if opts == nil {
		return nil
	}
	out := make(map[string]any, len(opts))
	for k, v := range opts {
		out[k] = redactOptionValue(k, v)
	}
	return out
}

func redactOptionValue(k string, v any) any {
	if sensitiveName(k) {
		if s, ok := v.(string); ok && strings.ToLower(k) == "token" && gcsTokenWords[s] {
			return s
		}
		if v == nil {
			return nil
		}
		if _, ok := v.(bool); ok {
			return v
		}
		return Redacted
	}
	switch x := v.(type) {
	case string:
		return RedactURL(x)
	case map[string]any:
		return RedactOptions(x)
	case map[string]string:
		m := make(map[string]any, len(x))
		for kk, vv := range x {
			m[kk] = redactOptionValue(kk, vv)
		}
		return m
	case map[any]any:
		m := make(map[any]any, len(x))
		for kk, vv := range x {
			ks, _ := kk.(string)
			m[kk] = redactOptionValue(ks, vv)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = redactOptionValue("", e)
		}
		return l
	}
	return v
}
