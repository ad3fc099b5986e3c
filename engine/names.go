package engine

import (
	"fmt"
	"strings"
)

// EncodeName shows a source or catalog name as a file name (SPEC §2).
func EncodeName(n string) string {
	switch n {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return escape(n, "%/@\x00")
}

// encodeValue escapes a parameter key or value for a path.
func encodeKey(s string) string   { return escape(s, "%/@=\x00") }
func encodeValue(s string) string { return escape(s, "%/@\x00") }

func escape(s, special string) string {
	if !strings.ContainsAny(s, special) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(special, c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Unescape decodes %XX sequences; a '%' not followed by two hex digits is
// an error, so that every name has one meaning.
func Unescape(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", fmt.Errorf("bad percent-escape in %q", s)
		}
		b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
		i += 2
	}
	return b.String(), nil
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// KV is one parameter setting from a path.
type KV struct{ Key, Value string }

// ParsedName is a path name split by the grammar
// NAME ( "@" KEY "=" VALUE )* [ "." EXT ]. The extension cannot be told
// apart from a dotted value without knowing the source, so Tail keeps the
// raw last segment: the caller decides with the source's extension.
type ParsedName struct {
	Name    string // decoded
	RawBase string // NAME as written, still encoded (may end in .EXT)
	KVs     []KV   // decoded; the last Value may still carry ".EXT"
	// RawLast is the last value as written, still encoded: the extension
	// is split off it, so that "%2E" in a value is never taken for the
	// dot of an extension.
	RawLast string
}

// ParseName splits a path segment that has at least one '@'. Names without
// '@' are looked up directly.
func ParseName(s string) (ParsedName, error) {
	parts := strings.Split(s, "@")
	var pn ParsedName
	pn.RawBase = parts[0]
	name, err := Unescape(parts[0])
	if err != nil {
		return pn, err
	}
	pn.Name = name
	for _, kv := range parts[1:] {
		i := strings.IndexByte(kv, '=')
		if i <= 0 {
			return pn, fmt.Errorf("malformed parameter %q in %q: want @key=value", kv, s)
		}
		k, err := Unescape(kv[:i])
		if err != nil {
			return pn, err
		}
		v, err := Unescape(kv[i+1:])
		if err != nil {
			return pn, err
		}
		pn.KVs = append(pn.KVs, KV{k, v})
		pn.RawLast = kv[i+1:]
	}
	return pn, nil
}

// FormatName is the inverse of ParseName: NAME@k=v...[.ext].
func FormatName(name string, kvs []KV, ext string) string {
	var b strings.Builder
	b.WriteString(EncodeName(name))
	for _, kv := range kvs {
		b.WriteString("@")
		b.WriteString(encodeKey(kv.Key))
		b.WriteString("=")
		b.WriteString(encodeValue(kv.Value))
	}
	if ext != "" {
		b.WriteString(".")
		b.WriteString(ext)
	}
	return b.String()
}
