package engine

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// encodeYAML writes plain values (maps, lists, scalars) as block YAML. It
// exists because yaml.v3's encoder costs ~70µs per describe.yaml, and a
// listing of 10,000 sources stats that many of them; anything it is not
// sure is a plain scalar is written as a JSON string, which YAML reads as
// a double-quoted scalar.
func encodeYAML(v any) []byte {
	var b bytes.Buffer
	writeYAML(&b, v, 0, false)
	if b.Len() == 0 || b.Bytes()[b.Len()-1] != '\n' {
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// writeYAML writes v; inline means the cursor is after "key:" or "- ".
func writeYAML(b *bytes.Buffer, v any, indent int, inline bool) {
	pad := strings.Repeat("  ", indent)
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			b.WriteString(" {}\n")
			return
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if inline {
			b.WriteByte('\n')
		}
		for _, k := range keys {
			b.WriteString(pad)
			ks := yamlScalarString(k)
			if len(ks) > 1000 {
				// YAML caps implicit keys at 1024 characters
				b.WriteString("? " + ks + "\n" + pad)
			} else {
				b.WriteString(ks)
			}
			b.WriteByte(':')
			writeYAML(b, x[k], indent+1, true)
		}
	case []any:
		if len(x) == 0 {
			b.WriteString(" []\n")
			return
		}
		if inline {
			b.WriteByte('\n')
		}
		for _, e := range x {
			b.WriteString(pad)
			b.WriteByte('-')
			switch e.(type) {
			case map[string]any:
				if m := e.(map[string]any); len(m) > 0 {
					// "- key: v" with the rest of the map aligned under it
					var inner bytes.Buffer
					writeYAML(&inner, e, indent+1, false)
					b.WriteByte(' ')
					b.Write(bytes.TrimPrefix(inner.Bytes(), []byte(strings.Repeat("  ", indent+1))))
					continue
				}
			}
			writeYAML(b, e, indent+1, true)
		}
	case tuple:
		writeYAML(b, []any(x), indent, inline)
	default:
		if inline {
			b.WriteByte(' ')
		}
		b.WriteString(yamlScalar(v))
		b.WriteByte('\n')
	}
}

func yamlScalar(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		if x {
			return "true"
		}
		return "false"
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		switch {
		case math.IsNaN(x):
			return ".nan"
		case math.IsInf(x, 1):
			return ".inf"
		case math.IsInf(x, -1):
			return "-.inf"
		}
		return pyFloatRepr(x)
	case string:
		return yamlScalarString(x)
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return yamlScalarString(stringify(v))
}

// plainSafe: a conservative set of scalars YAML reads back unchanged
// when written plain (letters, digits and a few punctuation marks, not
// starting with a digit or an indicator).
func plainSafe(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_', c == '/', c == '.':
		case i > 0 && ('0' <= c && c <= '9' || c == ' ' || c == '(' || c == ')' || c == '+' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// yamlScalarString writes s plain when that reads back as the same string,
// else as a double-quoted (JSON) string.
func yamlScalarString(s string) string {
	if plainSafe(s) && !strings.HasSuffix(s, " ") && !yamlSpecial(s) {
		return s
	}
	return quoteYAML(s)
}

// quoteYAML writes a double-quoted YAML scalar, escaping everything YAML
// does not allow raw (C0 and C1 controls, DEL, BOM, line separators).
func quoteYAML(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) || r == 0xfeff || r == 0x2028 || r == 0x2029 || r == utf8.RuneError:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func yamlSpecial(s string) bool {
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ".inf", ".nan", "-.inf", "+.inf":
		return true
	}
	// ParseFloat's failure allocates an error: skip it for the strings
	// that cannot start a number it accepts (digits, a sign, a dot, inf,
	// nan), which are almost all of them.
	if s == "" || !strings.ContainsRune("0123456789+-.iInN", rune(s[0])) {
		return false
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return true
	}
	return false
}
