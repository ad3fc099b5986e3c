package engine

// A Jinja2 template engine for the subset of the language catalogs use,
// written to render exactly as Intake's jinja2 does: Python's str() of
// values, Python's arithmetic and comparisons, jinja2's undefined names,
// filters, tests, loops and whitespace control, and jinja2's error
// messages. This file is the lexer; jinja_parse.go the parser,
// jinja_eval.go the evaluator, jinja_filters.go filters, tests and methods.

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// jSyntaxError is jinja2's TemplateSyntaxError (and TemplateAssertionError
// for unknown filters and tests): the template cannot be compiled.
type jSyntaxError struct{ msg string }

func (e *jSyntaxError) Error() string { return e.msg }

func jSyntax(format string, a ...any) error { return &jSyntaxError{fmt.Sprintf(format, a...)} }

type jTokKind int

const (
	jtData jTokKind = iota
	jtVarBegin
	jtVarEnd
	jtBlockBegin
	jtBlockEnd
	jtName
	jtInt
	jtFloat
	jtString
	jtOp
	jtEOF
)

type jToken struct {
	kind jTokKind
	val  string // text, name, operator, or the decoded string
	num  any    // int64 / float64 for numbers
	line int
}

// describe names a token as jinja2's error messages do.
func (t jToken) describe() string {
	switch t.kind {
	case jtVarEnd:
		return "end of print statement"
	case jtBlockEnd:
		return "end of statement block"
	case jtEOF:
		return "end of template"
	case jtName, jtOp:
		return t.val
	case jtString:
		return "string"
	case jtInt:
		return "integer"
	case jtFloat:
		return "float"
	}
	return "template data"
}

// normalizeNewlines does what jinja2's lexer does to a template's text:
// every line ending becomes \n and one trailing newline is dropped
// (keep_trailing_newline=False).
func normalizeNewlines(s string) string {
	if strings.IndexByte(s, '\r') >= 0 {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		s = strings.ReplaceAll(s, "\r", "\n")
	}
	return strings.TrimSuffix(s, "\n")
}

type jLexer struct {
	src  string
	i    int
	line int
	toks []jToken
}

func jLex(src string) ([]jToken, error) {
	lx := &jLexer{src: normalizeNewlines(src), line: 1}
	if err := lx.run(); err != nil {
		return nil, err
	}
	return lx.toks, nil
}

func (lx *jLexer) emit(k jTokKind, val string) {
	lx.toks = append(lx.toks, jToken{kind: k, val: val, line: lx.line})
}

// stripTrailingData removes the whitespace at the end of the last data
// token ({%- and {{- and {#-).
func (lx *jLexer) stripTrailingData() {
	if n := len(lx.toks); n > 0 && lx.toks[n-1].kind == jtData {
		lx.toks[n-1].val = strings.TrimRightFunc(lx.toks[n-1].val, unicode.IsSpace)
	}
}

func (lx *jLexer) run() error {
	lstrip := false // the previous tag ended with -%} / -}} / -#}
	for lx.i < len(lx.src) {
		j := strings.Index(lx.src[lx.i:], "{")
		var data string
		for j >= 0 {
			k := lx.i + j
			if k+1 < len(lx.src) && (lx.src[k+1] == '{' || lx.src[k+1] == '%' || lx.src[k+1] == '#') {
				break
			}
			n := strings.Index(lx.src[k+1:], "{")
			if n < 0 {
				j = -1
			} else {
				j += n + 1
			}
		}
		if j < 0 {
			data = lx.src[lx.i:]
		} else {
			data = lx.src[lx.i : lx.i+j]
		}
		nl := strings.Count(data, "\n")
		if lstrip {
			data = strings.TrimLeftFunc(data, unicode.IsSpace)
			lstrip = false
		}
		if data != "" {
			lx.emit(jtData, data)
		}
		lx.line += nl
		if j < 0 {
			lx.i = len(lx.src)
			break
		}
		lx.i += j
		open := lx.src[lx.i : lx.i+2]
		lx.i += 2
		if lx.i < len(lx.src) && (lx.src[lx.i] == '-' || lx.src[lx.i] == '+') {
			if lx.src[lx.i] == '-' {
				lx.stripTrailingData()
			}
			lx.i++
		}
		switch open {
		case "{#":
			end := strings.Index(lx.src[lx.i:], "#}")
			if end < 0 {
				return jSyntax("Missing end of comment tag")
			}
			body := lx.src[lx.i : lx.i+end]
			lx.line += strings.Count(body, "\n")
			lstrip = strings.HasSuffix(body, "-")
			lx.i += end + 2
		case "{{":
			lx.emit(jtVarBegin, "")
			var err error
			if lstrip, err = lx.inside("}}"); err != nil {
				return err
			}
			lx.emit(jtVarEnd, "")
		case "{%":
			lx.emit(jtBlockBegin, "")
			start := len(lx.toks)
			var err error
			if lstrip, err = lx.inside("%}"); err != nil {
				return err
			}
			lx.emit(jtBlockEnd, "")
			if len(lx.toks) == start+2 && lx.toks[start].kind == jtName && lx.toks[start].val == "raw" {
				if lstrip, err = lx.raw(); err != nil {
					return err
				}
			}
		}
	}
	lx.emit(jtEOF, "")
	return nil
}

// raw reads the text up to {% endraw %} as data.
func (lx *jLexer) raw() (bool, error) {
	from := lx.i
	for k := lx.i; k < len(lx.src); k++ {
		if !strings.HasPrefix(lx.src[k:], "{%") {
			continue
		}
		p := k + 2
		strip := false
		if p < len(lx.src) && (lx.src[p] == '-' || lx.src[p] == '+') {
			strip = lx.src[p] == '-'
			p++
		}
		q := p
		for q < len(lx.src) && unicode.IsSpace(rune(lx.src[q])) {
			q++
		}
		if !strings.HasPrefix(lx.src[q:], "endraw") {
			continue
		}
		q += len("endraw")
		for q < len(lx.src) && unicode.IsSpace(rune(lx.src[q])) {
			q++
		}
		lstrip := false
		if q < len(lx.src) && (lx.src[q] == '-' || lx.src[q] == '+') {
			lstrip = lx.src[q] == '-'
			q++
		}
		if !strings.HasPrefix(lx.src[q:], "%}") {
			continue
		}
		data := lx.src[from:k]
		if strip {
			data = strings.TrimRightFunc(data, unicode.IsSpace)
		}
		// the raw block's own tokens are dropped: raw, data, endraw
		lx.toks = lx.toks[:len(lx.toks)-3]
		if data != "" {
			lx.emit(jtData, data)
		}
		lx.line += strings.Count(lx.src[from:q], "\n")
		lx.i = q + 2
		return lstrip, nil
	}
	return false, jSyntax("Missing end of raw directive")
}

// inside lexes the inside of a tag up to its end delimiter; it reports
// whether the tag ended with '-' (strip the whitespace after it).
func (lx *jLexer) inside(end string) (bool, error) {
	var stack []byte
	for {
		for lx.i < len(lx.src) && unicode.IsSpace(rune(lx.src[lx.i])) {
			if lx.src[lx.i] == '\n' {
				lx.line++
			}
			lx.i++
		}
		if lx.i >= len(lx.src) {
			if end == "}}" {
				return false, jSyntax("unexpected end of template, expected 'end of print statement'.")
			}
			return false, jSyntax("unexpected end of template, expected 'end of statement block'.")
		}
		rest := lx.src[lx.i:]
		if len(stack) == 0 {
			if strings.HasPrefix(rest, end) {
				lx.i += 2
				return false, nil
			}
			if (rest[0] == '-' || rest[0] == '+') && strings.HasPrefix(rest[1:], end) {
				lx.i += 3
				return rest[0] == '-', nil
			}
		}
		c := rest[0]
		switch {
		case c == '_' || c < utf8.RuneSelf && unicode.IsLetter(rune(c)) || c >= utf8.RuneSelf:
			k := lx.i
			for k < len(lx.src) {
				r, w := utf8.DecodeRuneInString(lx.src[k:])
				if r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) {
					k += w
					continue
				}
				break
			}
			if k == lx.i {
				r, _ := utf8.DecodeRuneInString(rest)
				return false, jSyntax("unexpected char %s at %d", pyQuote(string(r)), lx.i)
			}
			lx.emit(jtName, lx.src[lx.i:k])
			lx.i = k
		case c >= '0' && c <= '9':
			if err := lx.number(); err != nil {
				return false, err
			}
		case c == '\'' || c == '"':
			if err := lx.str(); err != nil {
				return false, err
			}
		default:
			op := ""
			for _, o := range []string{"//", "**", "==", "!=", "<=", ">="} {
				if strings.HasPrefix(rest, o) {
					op = o
					break
				}
			}
			if op == "" && strings.IndexByte("+-*/%~[](){}<>=.:|,;", c) >= 0 {
				op = rest[:1]
			}
			if op == "" {
				r, _ := utf8.DecodeRuneInString(rest)
				return false, jSyntax("unexpected char %s at %d", pyQuote(string(r)), lx.i)
			}
			switch op {
			case "(", "[", "{":
				stack = append(stack, op[0])
			case ")", "]", "}":
				want := map[string]byte{")": '(', "]": '[', "}": '{'}[op]
				if len(stack) == 0 {
					return false, jSyntax("unexpected '%s'", op)
				}
				if stack[len(stack)-1] != want {
					open := map[byte]string{'(': ")", '[': "]", '{': "}"}[stack[len(stack)-1]]
					return false, jSyntax("unexpected '%s', expected '%s'", op, open)
				}
				stack = stack[:len(stack)-1]
			}
			lx.emit(jtOp, op)
			lx.i += len(op)
		}
	}
}

func (lx *jLexer) number() error {
	s := lx.src
	k := lx.i
	digits := func(k int, ok func(byte) bool) int {
		start := k
		for k < len(s) && (ok(s[k]) || (s[k] == '_' && k > start && k+1 < len(s) && ok(s[k+1]))) {
			k++
		}
		return k
	}
	isDec := func(c byte) bool { return c >= '0' && c <= '9' }
	if s[k] == '0' && k+1 < len(s) && strings.IndexByte("bBoOxX", s[k+1]) >= 0 {
		base := map[byte]int{'b': 2, 'o': 8, 'x': 16}[s[k+1]|0x20]
		ok := func(c byte) bool {
			d := strings.IndexByte("0123456789abcdef", c|0x20)
			return d >= 0 && d < base && (c >= '0' && c <= '9' || base == 16)
		}
		p := k + 2
		if p < len(s) && s[p] == '_' {
			p++
		}
		e := digits(p, ok)
		if e > p {
			n, err := strconv.ParseInt(strings.ReplaceAll(s[p:e], "_", ""), base, 64)
			if err != nil {
				return jSyntax("integer %s is too large", s[k:e])
			}
			lx.toks = append(lx.toks, jToken{kind: jtInt, val: s[k:e], num: n, line: lx.line})
			lx.i = e
			return nil
		}
	}
	e := digits(k, isDec)
	isFloat := false
	prevDot := len(lx.toks) > 0 && lx.toks[len(lx.toks)-1].kind == jtOp && lx.toks[len(lx.toks)-1].val == "."
	if !prevDot {
		if e+1 < len(s) && s[e] == '.' && isDec(s[e+1]) {
			e = digits(e+1, isDec)
			isFloat = true
		}
		if e < len(s) && (s[e] == 'e' || s[e] == 'E') {
			p := e + 1
			if p < len(s) && (s[p] == '+' || s[p] == '-') {
				p++
			}
			if p < len(s) && isDec(s[p]) {
				e = digits(p, isDec)
				isFloat = true
			}
		}
	}
	text := strings.ReplaceAll(s[k:e], "_", "")
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil && !isRangeErr(err) {
			return jSyntax("bad float %s", s[k:e])
		}
		lx.toks = append(lx.toks, jToken{kind: jtFloat, val: s[k:e], num: f, line: lx.line})
	} else {
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return jSyntax("integer %s is too large for intakefs (64 bits)", s[k:e])
		}
		lx.toks = append(lx.toks, jToken{kind: jtInt, val: s[k:e], num: n, line: lx.line})
	}
	lx.i = e
	return nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// str reads a quoted string, decoding backslash escapes as Python's
// unicode-escape codec does (jinja2 decodes string literals that way).
func (lx *jLexer) str() error {
	q := lx.src[lx.i]
	k := lx.i + 1
	var b strings.Builder
	for k < len(lx.src) {
		c := lx.src[k]
		if c == q {
			lx.toks = append(lx.toks, jToken{kind: jtString, val: b.String(), line: lx.line})
			lx.line += strings.Count(lx.src[lx.i:k], "\n")
			lx.i = k + 1
			return nil
		}
		if c != '\\' || k+1 >= len(lx.src) {
			b.WriteByte(c)
			k++
			continue
		}
		e := lx.src[k+1]
		k += 2
		switch e {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '\\', '\'', '"':
			b.WriteByte(e)
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'v':
			b.WriteByte('\v')
		case '\n':
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
			if k+n <= len(lx.src) {
				if r, err := strconv.ParseUint(lx.src[k:k+n], 16, 32); err == nil {
					b.WriteRune(rune(r))
					k += n
					continue
				}
			}
			return jSyntax("invalid escape in string literal")
		case '0', '1', '2', '3', '4', '5', '6', '7':
			end := k - 1
			for end < len(lx.src) && end < k+2 && lx.src[end] >= '0' && lx.src[end] <= '7' {
				end++
			}
			r, _ := strconv.ParseUint(lx.src[k-1:end], 8, 32)
			b.WriteRune(rune(r))
			k = end
		default:
			b.WriteByte('\\')
			b.WriteByte(e)
		}
	}
	return jSyntax("unexpected char %s at %d", pyQuote(string(q)), lx.i)
}
