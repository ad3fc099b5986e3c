package engine

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// parseLiteral reads a Python literal (what ast.literal_eval accepts for the
// values catalogs use): numbers, strings, True/False/None, lists, tuples and
// dicts with string keys.
func parseLiteral(s string) (any, error) {
	p := &litParser{s: s}
	p.skip()
	v, err := p.value()
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
	s string
	i int
}

var errLiteral = errors.New("malformed literal")

func (p *litParser) skip() {
	for p.i < len(p.s) && unicode.IsSpace(rune(p.s[p.i])) {
		p.i++
	}
}

func (p *litParser) value() (any, error) {
	if p.i >= len(p.s) {
		return nil, errLiteral
	}
	switch c := p.s[p.i]; {
	case c == '[':
		p.i++
		items, err := p.seq(']')
		return items, err
	case c == '(':
		p.i++
		start := p.i
		items, err := p.seq(')')
		if err != nil {
			return nil, err
		}
		// (x) without a comma is just x
		if len(items) == 1 && !strings.Contains(p.s[start:p.i], ",") {
			return items[0], nil
		}
		return tuple(items), nil
	case c == '{':
		p.i++
		return p.dict()
	case c == '\'' || c == '"':
		return p.str()
	default:
		return p.atom()
	}
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

func (p *litParser) dict() (any, error) {
	out := map[string]any{}
	for {
		p.skip()
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			return out, nil
		}
		k, err := p.value()
		if err != nil {
			return nil, err
		}
		p.skip()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, errLiteral
		}
		p.i++
		p.skip()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out[pyStr(k)] = v
		p.skip()
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
		}
	}
}

func (p *litParser) str() (any, error) {
	q := p.s[p.i]
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == q:
			p.i++
			return b.String(), nil
		case c == '\\' && p.i+1 < len(p.s):
			p.i++
			switch e := p.s[p.i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			default:
				b.WriteByte(e)
			}
			p.i++
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return nil, errLiteral
}

func (p *litParser) atom() (any, error) {
	start := p.i
	for p.i < len(p.s) && !strings.ContainsRune(",:)]} \t\n", rune(p.s[p.i])) {
		p.i++
	}
	tok := p.s[start:p.i]
	switch tok {
	case "True":
		return true, nil
	case "False":
		return false, nil
	case "None":
		return nil, nil
	case "":
		return nil, errLiteral
	}
	t := strings.ReplaceAll(tok, "_", "")
	if n, err := strconv.ParseInt(t, 0, 64); err == nil {
		return n, nil
	}
	if f, err := strconv.ParseFloat(t, 64); err == nil && !strings.ContainsAny(t, "xXnN") {
		return f, nil
	}
	return nil, errLiteral
}

func stringify(v any) string { return fmt.Sprint(v) }
