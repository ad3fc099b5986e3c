package engine

import (
	"strings"
)

// Template nodes.
type (
	jNode interface{}

	jText   struct{ s string }
	jOutput struct{ e jExpr }
	jIf     struct {
		conds  []jExpr
		bodies [][]jNode
		els    []jNode
	}
	jFor struct {
		targets []string
		iter    jExpr
		cond    jExpr // for x in xs if cond
		body    []jNode
		els     []jNode
	}
	jSet struct {
		targets []string
		e       jExpr
	}
)

// Expression nodes.
type (
	jExpr interface{}

	jConst    struct{ v any }
	jName     struct{ name string }
	jListLit  struct{ items []jExpr }
	jTupleLit struct{ items []jExpr }
	jDictLit  struct{ keys, vals []jExpr }
	jGetattr  struct {
		x    jExpr
		name string
	}
	jGetitem struct{ x, idx jExpr }
	jSliceX  struct{ x, lo, hi, step jExpr }
	jCall    struct {
		fn jExpr
		a  jArgs
	}
	jFilter struct {
		x    jExpr // nil inside {% filter %} (unsupported)
		name string
		a    jArgs
	}
	jTest struct {
		x      jExpr
		name   string
		a      jArgs
		negate bool
	}
	jUnary struct {
		op string // "-", "+", "not"
		x  jExpr
	}
	jBinary struct {
		op   string // + - * / // % ** and or
		l, r jExpr
	}
	jCompare struct {
		first jExpr
		ops   []string // == != < <= > >= in notin
		rest  []jExpr
	}
	jConcat struct{ items []jExpr }
	jCondX  struct{ cond, a, b jExpr } // a if cond else b (b may be nil)
)

type jArgs struct {
	pos    []jExpr
	kwName []string
	kwVal  []jExpr
}

type jParser struct {
	toks []jToken
	i    int
	// stack of open block tags, for jinja2's "looking for" messages
	stack []string
	depth int
}

// jMaxDepth bounds the nesting of expressions and blocks.
const jMaxDepth = 100

func jParse(src string) ([]jNode, error) {
	toks, err := jLex(src)
	if err != nil {
		return nil, err
	}
	p := &jParser{toks: toks}
	body, end, err := p.subparse(nil)
	if err != nil {
		return nil, err
	}
	if end != "" {
		return nil, p.unknownTag(end, nil)
	}
	return body, nil
}

func (p *jParser) cur() jToken  { return p.toks[p.i] }
func (p *jParser) next() jToken { t := p.toks[p.i]; p.i++; return t }

func (p *jParser) isOp(v string) bool {
	t := p.cur()
	return t.kind == jtOp && t.val == v
}

func (p *jParser) isName(v string) bool {
	t := p.cur()
	return t.kind == jtName && t.val == v
}

func (p *jParser) expectOp(v string) error {
	if !p.isOp(v) {
		return jSyntax("expected token '%s', got '%s'", v, p.cur().describe())
	}
	p.i++
	return nil
}

func (p *jParser) expectBlockEnd() error {
	if p.cur().kind != jtBlockEnd {
		return jSyntax("expected token 'end of statement block', got '%s'", p.cur().describe())
	}
	p.i++
	return nil
}

var jEndTags = map[string][]string{
	"if":  {"elif", "else", "endif"},
	"for": {"else", "endfor"},
}

// unknownTag is jinja2's message for a tag it did not expect.
func (p *jParser) unknownTag(name string, looking []string) error {
	msg := "Encountered unknown tag '" + name + "'."
	if name == "" {
		msg = "Unexpected end of template."
	}
	if len(p.stack) > 0 {
		inner := p.stack[len(p.stack)-1]
		if looking == nil {
			looking = jEndTags[inner]
		}
		q := make([]string, len(looking))
		for i, l := range looking {
			q[i] = "'" + l + "'"
		}
		msg += " Jinja was looking for the following tags: " + strings.Join(q, " or ") + "." +
			" The innermost block that needs to be closed is '" + inner + "'."
	}
	return jSyntax("%s", msg)
}

// subparse reads nodes until one of the end tags (or the end of the
// template when ends is nil); it returns the tag that stopped it.
func (p *jParser) subparse(ends []string) ([]jNode, string, error) {
	var body []jNode
	for {
		t := p.cur()
		switch t.kind {
		case jtEOF:
			if ends != nil {
				return nil, "", p.unknownTag("", ends)
			}
			return body, "", nil
		case jtData:
			p.i++
			body = append(body, &jText{t.val})
		case jtVarBegin:
			p.i++
			e, err := p.expr()
			if err != nil {
				return nil, "", err
			}
			if p.cur().kind != jtVarEnd {
				return nil, "", jSyntax("expected token 'end of print statement', got '%s'", p.cur().describe())
			}
			p.i++
			body = append(body, &jOutput{e})
		case jtBlockBegin:
			p.i++
			tag := p.cur()
			if tag.kind != jtName {
				return nil, "", jSyntax("tag name expected")
			}
			for _, e := range ends {
				if tag.val == e {
					p.i++
					return body, tag.val, nil
				}
			}
			var n jNode
			var err error
			switch tag.val {
			case "if":
				p.i++
				n, err = p.parseIf()
			case "for":
				p.i++
				n, err = p.parseFor()
			case "set":
				p.i++
				n, err = p.parseSet()
			default:
				return nil, "", p.unknownTag(tag.val, ends)
			}
			if err != nil {
				return nil, "", err
			}
			body = append(body, n)
		default:
			return nil, "", jSyntax("unexpected '%s'", t.describe())
		}
	}
}

func (p *jParser) parseIf() (jNode, error) {
	if len(p.stack) >= jMaxDepth {
		return nil, jSyntax("blocks nested too deeply (more than %d levels)", jMaxDepth)
	}
	n := &jIf{}
	p.stack = append(p.stack, "if")
	defer func() { p.stack = p.stack[:len(p.stack)-1] }()
	for {
		c, err := p.expr()
		if err != nil {
			return nil, err
		}
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		body, end, err := p.subparse([]string{"elif", "else", "endif"})
		if err != nil {
			return nil, err
		}
		n.conds = append(n.conds, c)
		n.bodies = append(n.bodies, body)
		switch end {
		case "elif":
			continue
		case "else":
			if err := p.expectBlockEnd(); err != nil {
				return nil, err
			}
			els, _, err := p.subparse([]string{"endif"})
			if err != nil {
				return nil, err
			}
			n.els = els
		}
		return n, p.expectBlockEnd()
	}
}

func (p *jParser) parseTargets() ([]string, error) {
	var out []string
	paren := p.isOp("(")
	if paren {
		p.i++
	}
	for {
		t := p.cur()
		if t.kind != jtName {
			return nil, jSyntax("expected token 'name', got '%s'", t.describe())
		}
		p.i++
		out = append(out, t.val)
		if !p.isOp(",") {
			break
		}
		p.i++
		if p.cur().kind != jtName {
			break
		}
	}
	if paren {
		if err := p.expectOp(")"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (p *jParser) parseFor() (jNode, error) {
	if len(p.stack) >= jMaxDepth {
		return nil, jSyntax("blocks nested too deeply (more than %d levels)", jMaxDepth)
	}
	n := &jFor{}
	p.stack = append(p.stack, "for")
	defer func() { p.stack = p.stack[:len(p.stack)-1] }()
	var err error
	if n.targets, err = p.parseTargets(); err != nil {
		return nil, err
	}
	if !p.isName("in") {
		return nil, jSyntax("expected token 'in', got '%s'", p.cur().describe())
	}
	p.i++
	if n.iter, err = p.tupleExpr(false, true); err != nil {
		return nil, err
	}
	if p.isName("if") {
		p.i++
		if n.cond, err = p.expr(); err != nil {
			return nil, err
		}
	}
	if p.isName("recursive") {
		return nil, jSyntax("recursive loops are not supported by intakefs")
	}
	if err := p.expectBlockEnd(); err != nil {
		return nil, err
	}
	body, end, err := p.subparse([]string{"else", "endfor"})
	if err != nil {
		return nil, err
	}
	n.body = body
	if end == "else" {
		if err := p.expectBlockEnd(); err != nil {
			return nil, err
		}
		if n.els, _, err = p.subparse([]string{"endfor"}); err != nil {
			return nil, err
		}
	}
	return n, p.expectBlockEnd()
}

func (p *jParser) parseSet() (jNode, error) {
	targets, err := p.parseTargets()
	if err != nil {
		return nil, err
	}
	if !p.isOp("=") {
		return nil, jSyntax("block set statements are not supported by intakefs")
	}
	p.i++
	e, err := p.tupleExpr(true, false)
	if err != nil {
		return nil, err
	}
	return &jSet{targets, e}, p.expectBlockEnd()
}

// expr is jinja2's parse_tuple at the top of a print or an if: a
// comma makes a tuple.
func (p *jParser) expr() (jExpr, error) {
	return p.tupleExpr(true, false)
}

// tupleExpr reads "a, b, c" as a tuple (or one expression alone).
func (p *jParser) tupleExpr(withCond, noCondExpr bool) (jExpr, error) {
	parse := func() (jExpr, error) {
		if noCondExpr {
			return p.orExpr()
		}
		return p.condExpr()
	}
	first, err := parse()
	if err != nil {
		return nil, err
	}
	if !p.isOp(",") {
		return first, nil
	}
	items := []jExpr{first}
	for p.isOp(",") {
		p.i++
		if p.atExprEnd() {
			break
		}
		e, err := parse()
		if err != nil {
			return nil, err
		}
		items = append(items, e)
	}
	return &jTupleLit{items}, nil
}

func (p *jParser) atExprEnd() bool {
	t := p.cur()
	return t.kind == jtVarEnd || t.kind == jtBlockEnd || t.kind == jtEOF || (t.kind == jtOp && (t.val == ")" || t.val == "]" || t.val == "}"))
}

func (p *jParser) condExpr() (jExpr, error) {
	a, err := p.orExpr()
	if err != nil {
		return nil, err
	}
	for p.isName("if") {
		p.i++
		c, err := p.orExpr()
		if err != nil {
			return nil, err
		}
		var b jExpr
		if p.isName("else") {
			p.i++
			if b, err = p.condExpr(); err != nil {
				return nil, err
			}
		}
		a = &jCondX{cond: c, a: a, b: b}
	}
	return a, nil
}

func (p *jParser) orExpr() (jExpr, error) {
	l, err := p.andExpr()
	if err != nil {
		return nil, err
	}
	for p.isName("or") {
		p.i++
		r, err := p.andExpr()
		if err != nil {
			return nil, err
		}
		l = &jBinary{"or", l, r}
	}
	return l, nil
}

func (p *jParser) andExpr() (jExpr, error) {
	l, err := p.notExpr()
	if err != nil {
		return nil, err
	}
	for p.isName("and") {
		p.i++
		r, err := p.notExpr()
		if err != nil {
			return nil, err
		}
		l = &jBinary{"and", l, r}
	}
	return l, nil
}

func (p *jParser) notExpr() (jExpr, error) {
	if p.isName("not") {
		p.i++
		x, err := p.notExpr()
		if err != nil {
			return nil, err
		}
		return &jUnary{"not", x}, nil
	}
	return p.compare()
}

func (p *jParser) compare() (jExpr, error) {
	first, err := p.math1()
	if err != nil {
		return nil, err
	}
	c := &jCompare{first: first}
	for {
		t := p.cur()
		var op string
		switch {
		case t.kind == jtOp && (t.val == "==" || t.val == "!=" || t.val == "<" || t.val == "<=" || t.val == ">" || t.val == ">="):
			op = t.val
			p.i++
		case t.kind == jtName && t.val == "in":
			op = "in"
			p.i++
		case t.kind == jtName && t.val == "not" && p.toks[p.i+1].kind == jtName && p.toks[p.i+1].val == "in":
			op = "notin"
			p.i += 2
		default:
			if len(c.ops) == 0 {
				return first, nil
			}
			return c, nil
		}
		r, err := p.math1()
		if err != nil {
			return nil, err
		}
		c.ops = append(c.ops, op)
		c.rest = append(c.rest, r)
	}
}

func (p *jParser) math1() (jExpr, error) {
	l, err := p.concat()
	if err != nil {
		return nil, err
	}
	for p.isOp("+") || p.isOp("-") {
		op := p.next().val
		r, err := p.concat()
		if err != nil {
			return nil, err
		}
		l = &jBinary{op, l, r}
	}
	return l, nil
}

func (p *jParser) concat() (jExpr, error) {
	first, err := p.math2()
	if err != nil {
		return nil, err
	}
	if !p.isOp("~") {
		return first, nil
	}
	items := []jExpr{first}
	for p.isOp("~") {
		p.i++
		e, err := p.math2()
		if err != nil {
			return nil, err
		}
		items = append(items, e)
	}
	return &jConcat{items}, nil
}

func (p *jParser) math2() (jExpr, error) {
	l, err := p.pow()
	if err != nil {
		return nil, err
	}
	for p.isOp("*") || p.isOp("/") || p.isOp("//") || p.isOp("%") {
		op := p.next().val
		r, err := p.pow()
		if err != nil {
			return nil, err
		}
		l = &jBinary{op, l, r}
	}
	return l, nil
}

func (p *jParser) pow() (jExpr, error) {
	l, err := p.unary(true)
	if err != nil {
		return nil, err
	}
	for p.isOp("**") {
		p.i++
		r, err := p.unary(true)
		if err != nil {
			return nil, err
		}
		l = &jBinary{"**", l, r}
	}
	return l, nil
}

func (p *jParser) unary(withFilter bool) (jExpr, error) {
	if p.depth++; p.depth > jMaxDepth {
		return nil, jSyntax("expression nested too deeply (more than %d levels)", jMaxDepth)
	}
	defer func() { p.depth-- }()
	var n jExpr
	var err error
	switch {
	case p.isOp("-"):
		p.i++
		x, err := p.unary(false)
		if err != nil {
			return nil, err
		}
		n = &jUnary{"-", x}
	case p.isOp("+"):
		p.i++
		x, err := p.unary(false)
		if err != nil {
			return nil, err
		}
		n = &jUnary{"+", x}
	default:
		if n, err = p.primary(); err != nil {
			return nil, err
		}
	}
	if n, err = p.postfix(n); err != nil {
		return nil, err
	}
	if withFilter {
		return p.filterExpr(n)
	}
	return n, nil
}

func (p *jParser) primary() (jExpr, error) {
	t := p.cur()
	switch t.kind {
	case jtName:
		p.i++
		switch t.val {
		case "true", "True":
			return &jConst{true}, nil
		case "false", "False":
			return &jConst{false}, nil
		case "none", "None":
			return &jConst{nil}, nil
		}
		return &jName{t.val}, nil
	case jtString:
		p.i++
		s := t.val
		for p.cur().kind == jtString {
			s += p.next().val
		}
		return &jConst{s}, nil
	case jtInt, jtFloat:
		p.i++
		return &jConst{t.num}, nil
	case jtOp:
		switch t.val {
		case "(":
			p.i++
			if p.isOp(")") {
				p.i++
				return &jTupleLit{}, nil
			}
			e, err := p.tupleExpr(true, false)
			if err != nil {
				return nil, err
			}
			// (x,) is a tuple: tupleExpr made it one
			if err := p.expectOp(")"); err != nil {
				return nil, err
			}
			return e, nil
		case "[":
			p.i++
			l := &jListLit{}
			for !p.isOp("]") {
				if len(l.items) > 0 {
					if err := p.expectOp(","); err != nil {
						return nil, err
					}
					if p.isOp("]") {
						break
					}
				}
				e, err := p.condExpr()
				if err != nil {
					return nil, err
				}
				l.items = append(l.items, e)
			}
			p.i++
			return l, nil
		case "{":
			p.i++
			d := &jDictLit{}
			for !p.isOp("}") {
				if len(d.keys) > 0 {
					if err := p.expectOp(","); err != nil {
						return nil, err
					}
					if p.isOp("}") {
						break
					}
				}
				k, err := p.condExpr()
				if err != nil {
					return nil, err
				}
				if err := p.expectOp(":"); err != nil {
					return nil, err
				}
				v, err := p.condExpr()
				if err != nil {
					return nil, err
				}
				d.keys = append(d.keys, k)
				d.vals = append(d.vals, v)
			}
			p.i++
			return d, nil
		}
	}
	if t.kind == jtVarEnd || t.kind == jtBlockEnd || t.kind == jtEOF {
		return nil, jSyntax("Expected an expression, got '%s'", t.describe())
	}
	return nil, jSyntax("unexpected '%s'", t.describe())
}

func (p *jParser) postfix(n jExpr) (jExpr, error) {
	for {
		switch {
		case p.isOp("."):
			p.i++
			t := p.next()
			switch t.kind {
			case jtName:
				n = &jGetattr{n, t.val}
			case jtInt:
				n = &jGetitem{n, &jConst{t.num}}
			default:
				return nil, jSyntax("expected name or number")
			}
		case p.isOp("["):
			p.i++
			e, err := p.subscript(n)
			if err != nil {
				return nil, err
			}
			n = e
		case p.isOp("("):
			p.i++
			a, err := p.callArgs()
			if err != nil {
				return nil, err
			}
			n = &jCall{n, a}
		default:
			return n, nil
		}
	}
}

func (p *jParser) subscript(x jExpr) (jExpr, error) {
	var parts [3]jExpr
	colons := 0
	for {
		if p.isOp("]") {
			p.i++
			break
		}
		if p.isOp(":") {
			p.i++
			colons++
			if colons > 2 {
				return nil, jSyntax("expected token ']', got ':'")
			}
			continue
		}
		e, err := p.condExpr()
		if err != nil {
			return nil, err
		}
		if parts[colons] != nil {
			return nil, jSyntax("expected token ']', got '%s'", p.cur().describe())
		}
		parts[colons] = e
		if p.isOp(",") {
			return nil, jSyntax("tuple subscripts are not supported by intakefs")
		}
	}
	if colons == 0 {
		if parts[0] == nil {
			return nil, jSyntax("Expected an expression, got ']'")
		}
		return &jGetitem{x, parts[0]}, nil
	}
	return &jSliceX{x, parts[0], parts[1], parts[2]}, nil
}

func (p *jParser) callArgs() (jArgs, error) {
	var a jArgs
	for !p.isOp(")") {
		if len(a.pos)+len(a.kwName) > 0 {
			if err := p.expectOp(","); err != nil {
				return a, err
			}
			if p.isOp(")") {
				break
			}
		}
		if p.cur().kind == jtName && p.toks[p.i+1].kind == jtOp && p.toks[p.i+1].val == "=" {
			name := p.next().val
			p.i++
			v, err := p.condExpr()
			if err != nil {
				return a, err
			}
			a.kwName = append(a.kwName, name)
			a.kwVal = append(a.kwVal, v)
			continue
		}
		if p.isOp("*") || p.isOp("**") {
			return a, jSyntax("*args and **kwargs are not supported by intakefs")
		}
		if len(a.kwName) > 0 {
			return a, jSyntax("invalid syntax for function call expression")
		}
		v, err := p.condExpr()
		if err != nil {
			return a, err
		}
		a.pos = append(a.pos, v)
	}
	p.i++
	return a, nil
}

func (p *jParser) filterExpr(n jExpr) (jExpr, error) {
	for {
		switch {
		case p.isOp("|"):
			p.i++
			name, err := p.dottedName()
			if err != nil {
				return nil, err
			}
			if _, ok := jFilters[name]; !ok {
				return nil, jSyntax("No filter named '%s'.", name)
			}
			f := &jFilter{x: n, name: name}
			if p.isOp("(") {
				p.i++
				if f.a, err = p.callArgs(); err != nil {
					return nil, err
				}
			}
			n = f
		case p.isName("is"):
			p.i++
			neg := false
			if p.isName("not") {
				p.i++
				neg = true
			}
			name, err := p.dottedName()
			if err != nil {
				return nil, err
			}
			if _, ok := jTests[name]; !ok {
				return nil, jSyntax("No test named '%s'.", name)
			}
			t := &jTest{x: n, name: name, negate: neg}
			if p.isOp("(") {
				p.i++
				if t.a, err = p.callArgs(); err != nil {
					return nil, err
				}
			} else if c := p.cur(); c.kind == jtString || c.kind == jtInt || c.kind == jtFloat ||
				(c.kind == jtName && c.val != "else" && c.val != "or" && c.val != "and" && c.val != "if" && c.val != "not" && c.val != "in" && c.val != "is") ||
				(c.kind == jtOp && (c.val == "[" || c.val == "{" || c.val == "-")) {
				arg, err := p.unary(false)
				if err != nil {
					return nil, err
				}
				t.a.pos = []jExpr{arg}
			}
			n = t
		case p.isOp("("):
			p.i++
			a, err := p.callArgs()
			if err != nil {
				return nil, err
			}
			n = &jCall{n, a}
		default:
			return n, nil
		}
	}
}

func (p *jParser) dottedName() (string, error) {
	t := p.cur()
	if t.kind != jtName {
		return "", jSyntax("expected token 'name', got '%s'", t.describe())
	}
	p.i++
	name := t.val
	for p.isOp(".") && p.toks[p.i+1].kind == jtName {
		p.i++
		name += "." + p.next().val
	}
	return name, nil
}
