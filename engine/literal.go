package engine

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// parseLiteral reads a Python literal as ast.literal_eval does: numbers
// (with Python's syntax: underscores, 0x/0o/0b, no leading zeros), one
// optional sign, strings (adjacent ones joined), True/False/None, lists,
// tuples (a bare "1, 2" is one), dicts and sets (made lists). Leading
// spaces and tabs are ignored, as literal_eval does. Anything else is an
// error: a name, a call, an operator, bad syntax. Complex numbers, bytes
// and integers beyond 64 bits are not supported (an error too).
func parseLiteral(s string) (any, error) {
	p := &litParser{s: strings.TrimLeft(s, " \t")}
	v, err := p.tupleOrValue(true)
	if err != nil {
		return nil, err
	}
	p.skip()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("unexpected %q at offset %d", p.s[p.i:], p.i)
	}
	return v, nil
}

type litParser struct {
	s     string
	i     int
	depth int
}

var errLiteral = errors.New("malformed literal")

// skip passes whitespace: any inside brackets, spaces and tabs outside.
func (p *litParser) skip() {
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == ' ' || c == '\t' || c == '\f' || (p.depth > 0 && (c == '\n' || c == '\r')) {
			p.i++
			continue
		}
		if c == '\\' && p.i+1 < len(p.s) && p.s[p.i+1] == '\n' {
			p.i += 2
			continue
		}
		if c == '#' {
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.i++
			}
			continue
		}
		if p.depth == 0 && c == '\n' && strings.TrimSpace(p.s[p.i:]) == "" {
			p.i = len(p.s)
			continue
		}
		break
	}
}

// tupleOrValue reads "a" or "a, b, ..." (a tuple) where a tuple may be
// written without parentheses.
func (p *litParser) tupleOrValue(top bool) (any, error) {
	p.skip()
	first, err := p.value()
	if err != nil {
		return nil, err
	}
	p.skip()
	if p.i >= len(p.s) || p.s[p.i] != ',' {
		return first, nil
	}
	items := tuple{first}
	for p.i < len(p.s) && p.s[p.i] == ',' {
		p.i++
		p.skip()
		if p.i >= len(p.s) || p.s[p.i] == ')' || (!top && (p.s[p.i] == ']' || p.s[p.i] == '}')) {
			break
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		items = append(items, v)
		p.skip()
	}
	return items, nil
}

func (p *litParser) value() (any, error) {
	p.skip()
	if p.i >= len(p.s) || p.depth > 100 {
		return nil, errLiteral
	}
	switch c := p.s[p.i]; {
	case c == '[':
		p.i++
		p.depth++
		items, err := p.seq(']')
		p.depth--
		return items, err
	case c == '(':
		p.i++
		p.depth++
		defer func() { p.depth-- }()
		p.skip()
		if p.i < len(p.s) && p.s[p.i] == ')' {
			p.i++
			return tuple{}, nil
		}
		v, err := p.tupleOrValue(false)
		if err != nil {
			return nil, err
		}
		p.skip()
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return nil, errLiteral
		}
		p.i++
		return v, nil
	case c == '{':
		p.i++
		p.depth++
		v, err := p.dictOrSet()
		p.depth--
		return v, err
	case c == '\'' || c == '"':
		return p.strings()
	case c == '-' || c == '+':
		p.i++
		p.skip()
		v, err := p.number()
		if err != nil {
			return nil, err
		}
		if c == '-' {
			switch n := v.(type) {
			case int64:
				return -n, nil
			case float64:
				return -n, nil
			}
		}
		return v, nil
	case c >= '0' && c <= '9' || c == '.':
		return p.number()
	default:
		// a name: only the three constants are literals
		start := p.i
		for p.i < len(p.s) {
			r, w := utf8.DecodeRuneInString(p.s[p.i:])
			if r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) {
				p.i += w
				continue
			}
			break
		}
		switch p.s[start:p.i] {
		case "True":
			return true, nil
		case "False":
			return false, nil
		case "None":
			return nil, nil
		}
		if p.i < len(p.s) && (p.s[p.i] == '\'' || p.s[p.i] == '"') && isStrPrefix(p.s[start:p.i]) {
			p.i = start
			return p.strings()
		}
		return nil, errLiteral
	}
}

func isStrPrefix(s string) bool {
	switch strings.ToLower(s) {
	case "r", "u":
		return true
	}
	return false
}

func (p *litParser) seq(end byte) ([]any, error) {
	items := []any{}
	for {
		p.skip()
		if p.i < len(p.s) && p.s[p.i] == end {
			p.i++
			return items, nil
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		items = append(items, v)
		p.skip()
		if p.i >= len(p.s) {
			return nil, errLiteral
		}
		if p.s[p.i] == ',' {
			p.i++
			continue
		}
		if p.s[p.i] != end {
			return nil, errLiteral
		}
	}
}

func (p *litParser) dictOrSet() (any, error) {
	out := map[string]any{}
	var set []any
	for n := 0; ; n++ {
		p.skip()
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			if set != nil {
				return set, nil
			}
			return out, nil
		}
		if n > 0 {
			if p.i >= len(p.s) || p.s[p.i] != ',' {
				return nil, errLiteral
			}
			p.i++
			p.skip()
			if p.i < len(p.s) && p.s[p.i] == '}' {
				continue
			}
		}
		k, err := p.value()
		if err != nil {
			return nil, err
		}
		p.skip()
		if p.i < len(p.s) && p.s[p.i] == ':' && set == nil {
			p.i++
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			switch k.(type) {
			case []any, map[string]any:
				return nil, errLiteral // unhashable
			}
			out[pyStr(k)] = v
			continue
		}
		if len(out) > 0 {
			return nil, errLiteral
		}
		// a set; intakefs keeps it as a list, unique items in order
		if set == nil {
			set = []any{}
		}
		if !contains(set, k) {
			set = append(set, k)
		}
	}
}

// strings reads one or more adjacent string literals.
func (p *litParser) strings() (any, error) {
	var b strings.Builder
	for n := 0; ; n++ {
		p.skip()
		raw := false
		start := p.i
		for p.i < len(p.s) && strings.IndexByte("rRuU", p.s[p.i]) >= 0 && p.i-start < 2 {
			if p.s[p.i] == 'r' || p.s[p.i] == 'R' {
				raw = true
			}
			p.i++
		}
		if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
			if n == 0 {
				return nil, errLiteral
			}
			p.i = start
			return b.String(), nil
		}
		if err := p.str(&b, raw); err != nil {
			return nil, err
		}
	}
}

func (p *litParser) str(b *strings.Builder, raw bool) error {
	q := p.s[p.i]
	triple := strings.HasPrefix(p.s[p.i:], strings.Repeat(string(q), 3))
	if triple {
		p.i += 3
	} else {
		p.i++
	}
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == q && (!triple || strings.HasPrefix(p.s[p.i:], strings.Repeat(string(q), 3))):
			if triple {
				p.i += 3
			} else {
				p.i++
			}
			return nil
		case c == '\n' && !triple:
			return errLiteral
		case c == '\\' && p.i+1 < len(p.s):
			if raw {
				b.WriteByte(c)
				b.WriteByte(p.s[p.i+1])
				p.i += 2
				continue
			}
			p.i++
			e := p.s[p.i]
			p.i++
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'v':
				b.WriteByte('\v')
			case '\\', '\'', '"':
				b.WriteByte(e)
			case '\n':
			case 'x', 'u', 'U':
				n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
				if p.i+n > len(p.s) {
					return errLiteral
				}
				r, err := strconv.ParseUint(p.s[p.i:p.i+n], 16, 32)
				if err != nil {
					return errLiteral
				}
				b.WriteRune(rune(r))
				p.i += n
			case '0', '1', '2', '3', '4', '5', '6', '7':
				end := p.i - 1
				for end < len(p.s) && end < p.i+2 && p.s[end] >= '0' && p.s[end] <= '7' {
					end++
				}
				r, _ := strconv.ParseUint(p.s[p.i-1:end], 8, 32)
				b.WriteRune(rune(r))
				p.i = end
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return errLiteral
}

// number reads a Python int or float literal.
func (p *litParser) number() (any, error) {
	s := p.s
	start := p.i
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	// digitpart: digit (["_"] digit)*
	digitpart := func(ok func(byte) bool) bool {
		if p.i >= len(s) || !ok(s[p.i]) {
			return false
		}
		p.i++
		for p.i < len(s) {
			if ok(s[p.i]) {
				p.i++
			} else if s[p.i] == '_' && p.i+1 < len(s) && ok(s[p.i+1]) {
				p.i += 2
			} else {
				break
			}
		}
		return true
	}
	if p.i+1 < len(s) && s[p.i] == '0' && strings.IndexByte("xXoObB", s[p.i+1]) >= 0 {
		base := map[byte]int{'x': 16, 'o': 8, 'b': 2}[s[p.i+1]|0x20]
		ok := func(c byte) bool {
			d := strings.IndexByte("0123456789abcdef", c|0x20)
			return d >= 0 && d < base && (isDigit(c) || base == 16)
		}
		p.i += 2
		if p.i < len(s) && s[p.i] == '_' {
			p.i++
		}
		if !digitpart(ok) {
			return nil, errLiteral
		}
		if p.endsName() {
			return nil, errLiteral
		}
		n, err := strconv.ParseInt(strings.ReplaceAll(s[start+2:p.i], "_", ""), base, 64)
		if err != nil {
			return nil, errLiteral
		}
		return n, nil
	}
	intPart := digitpart(isDigit)
	isFloat := false
	if p.i < len(s) && s[p.i] == '.' {
		p.i++
		frac := digitpart(isDigit)
		if !intPart && !frac {
			return nil, errLiteral
		}
		isFloat = true
	} else if !intPart {
		return nil, errLiteral
	}
	if p.i < len(s) && (s[p.i] == 'e' || s[p.i] == 'E') {
		save := p.i
		p.i++
		if p.i < len(s) && (s[p.i] == '+' || s[p.i] == '-') {
			p.i++
		}
		if !digitpart(isDigit) {
			p.i = save
			return nil, errLiteral
		}
		isFloat = true
	}
	if p.i < len(s) && (s[p.i] == 'j' || s[p.i] == 'J') {
		return nil, errLiteral // complex: not supported
	}
	if p.endsName() {
		return nil, errLiteral
	}
	text := strings.ReplaceAll(s[start:p.i], "_", "")
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil && !isRangeErr(err) {
			return nil, errLiteral
		}
		return f, nil
	}
	// Python refuses leading zeros in a decimal integer (except 0, 00...)
	if len(text) > 1 && text[0] == '0' && strings.Trim(text, "0") != "" {
		return nil, errLiteral
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return nil, errLiteral
	}
	return n, nil
}

// endsName: a number directly followed by a letter is bad syntax (1x).
func (p *litParser) endsName() bool {
	if p.i >= len(p.s) {
		return false
	}
	r, _ := utf8.DecodeRuneInString(p.s[p.i:])
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

func stringify(v any) string { return fmt.Sprint(v) }
