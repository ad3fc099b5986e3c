package engine

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Intake reads catalogs with PyYAML's safe loader, which resolves plain
// scalars by YAML 1.1's rules, not 1.2's (yaml.v3's): yes/no/on/off are
// booleans, 0755 is octal, 1:30 is 90, 1e3 (no dot) is a string, a date
// is a date. resolveScalar11 gives a plain scalar the value PyYAML gives
// it; quoted and explicitly tagged scalars are left to yaml.v3.

var (
	re11Bool  = regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	re11Float = regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
	re11Int   = regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	re11Null  = regexp.MustCompile(`^(?:~|null|Null|NULL|)$`)
	re11Time  = regexp.MustCompile(`^(?:([0-9][0-9][0-9][0-9])-([0-9][0-9]?)-([0-9][0-9]?)(?:(?:[Tt]|[ \t]+)([0-9][0-9]?):([0-9][0-9]):([0-9][0-9])(?:\.([0-9]*))?(?:[ \t]*(Z|([-+])([0-9][0-9]?)(?::([0-9][0-9]))?))?)?)$`)
	re11Date  = regexp.MustCompile(`^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]$`)
)

// resolveScalar11 is the value of a scalar node as PyYAML reads it.
func resolveScalar11(n *yaml.Node) any {
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return n.Value
	}
	if n.Style&yaml.TaggedStyle != 0 || (n.Tag != "" && !strings.HasPrefix(n.Tag, "!!")) {
		var v any
		if err := n.Decode(&v); err != nil {
			return n.Value
		}
		if i, ok := v.(int); ok {
			return int64(i)
		}
		return v
	}
	s := n.Value
	if s == "" {
		return nil
	}
	switch c := s[0]; {
	case strings.IndexByte("yYnNtTfFoO", c) >= 0 && re11Bool.MatchString(s):
		switch strings.ToLower(s) {
		case "yes", "true", "on":
			return true
		}
		return false
	}
	if strings.IndexByte("-+0123456789.", s[0]) >= 0 {
		if re11Float.MatchString(s) {
			return construct11Float(s)
		}
		if re11Int.MatchString(s) {
			return construct11Int(s)
		}
	}
	if strings.IndexByte("~nN", s[0]) >= 0 && re11Null.MatchString(s) {
		return nil
	}
	if s[0] >= '0' && s[0] <= '9' {
		if t, ok := construct11Time(s); ok {
			return t
		}
	}
	return s
}

func sexagesimal(s string) float64 {
	var v float64
	for _, part := range strings.Split(s, ":") {
		f, _ := strconv.ParseFloat(part, 64)
		v = v*60 + f
	}
	return v
}

func construct11Int(s string) any {
	v := strings.ReplaceAll(s, "_", "")
	sign := int64(1)
	if v[0] == '-' || v[0] == '+' {
		if v[0] == '-' {
			sign = -1
		}
		v = v[1:]
	}
	var n int64
	var err error
	switch {
	case v == "0":
		return int64(0)
	case strings.HasPrefix(v, "0b"):
		n, err = strconv.ParseInt(v[2:], 2, 64)
	case strings.HasPrefix(v, "0x"):
		n, err = strconv.ParseInt(v[2:], 16, 64)
	case v[0] == '0':
		n, err = strconv.ParseInt(v, 8, 64)
	case strings.Contains(v, ":"):
		return sign * int64(sexagesimal(v))
	default:
		n, err = strconv.ParseInt(v, 10, 64)
	}
	if err != nil {
		// beyond 64 bits: Python keeps the exact integer, intakefs a float
		f, _ := strconv.ParseFloat(v, 64)
		return float64(sign) * f
	}
	return sign * n
}

func construct11Float(s string) any {
	v := strings.ToLower(strings.ReplaceAll(s, "_", ""))
	sign := 1.0
	if v[0] == '-' || v[0] == '+' {
		if v[0] == '-' {
			sign = -1
		}
		v = v[1:]
	}
	switch {
	case v == ".inf":
		return sign * math.Inf(1)
	case v == ".nan":
		return math.NaN()
	case strings.Contains(v, ":"):
		return sign * sexagesimal(v)
	}
	f, _ := strconv.ParseFloat(v, 64)
	return sign * f
}

func construct11Time(s string) (time.Time, bool) {
	m := re11Time.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, false
	}
	atoi := func(x string) int { n, _ := strconv.Atoi(x); return n }
	y, mo, d := atoi(m[1]), atoi(m[2]), atoi(m[3])
	if m[4] == "" {
		if !re11Date.MatchString(s) {
			return time.Time{}, false
		}
		return pyDate(y, time.Month(mo), d), true
	}
	ns := 0
	if m[7] != "" {
		frac := (m[7] + "000000")[:6] // PyYAML keeps microseconds
		ns = atoi(frac) * 1000
	}
	loc := naiveLoc
	if m[8] != "" {
		off := 0
		if m[8] != "Z" {
			off = atoi(m[10])*3600 + atoi(m[11])*60
			if m[9] == "-" {
				off = -off
			}
		}
		loc = time.FixedZone("", off)
		if off == 0 {
			loc = time.UTC
		}
	}
	return time.Date(y, time.Month(mo), d, atoi(m[4]), atoi(m[5]), atoi(m[6]), ns, loc), true
}
