package engine

import (
	"fmt"
	"strings"

	"github.com/intakefs/intakefs/cache/decomp"
)

// cacheBlock is the part of an entry's Intake `cache:` block that decides
// what a source's data is. Intake 0.6.6 applies only the first block's
// result (its csv and textfiles drivers take element [0]), so only the
// first block counts here too; `argkey` is read by urlArg; `regex` only
// shapes Intake's download path and does not change the data.
type cacheBlock struct {
	// Type is file, dir or compressed ("file" when not given).
	Type string
	// Decomp is the compressed type's decomp key ("" or "infer": by name).
	Decomp string
	// filter is the compressed type's regex_filter (nil: every member).
	filter *decomp.Filter
}

// parseCacheBlock reads the entry's first cache block; nil when there is
// none. Intake 0.6.6 builds and loads every block before its driver takes
// the first one's files, so a block that cannot work fails the source
// wherever it is: an unknown type (IndexError naming it), a dir without
// a depth, a compressed block's unknown decomp or bad regex_filter.
func parseCacheBlock(e *Entry) (*cacheBlock, error) {
	if len(e.Cache) == 0 {
		return nil, nil
	}
	where := fmt.Sprintf("%s:%d: source %q: cache", e.File, e.Line, e.Name)
	var first *cacheBlock
	for _, c := range e.Cache {
		m, ok := c.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: each entry must be a mapping, got %v", where, c)
		}
		cb, err := parseOneBlock(m, where)
		if err != nil {
			return nil, err
		}
		if first == nil {
			first = cb
		}
	}
	return first, nil
}

// parseOneBlock reads and checks one cache block.
func parseOneBlock(m map[string]any, where string) (*cacheBlock, error) {
	cb := &cacheBlock{Type: "file"}
	if t, ok := m["type"]; ok {
		ts, _ := t.(string)
		switch ts {
		case "file", "dir", "compressed":
			cb.Type = ts
		case "dat":
			return nil, fmt.Errorf("%s: type %q (the DAT protocol) is not supported", where, ts)
		default:
			return nil, fmt.Errorf("%s: unknown type %v (Intake: IndexError: %v; want file, dir or compressed)", where, t, t)
		}
	}
	switch cb.Type {
	case "dir":
		// Intake copies the files down to depth levels (KeyError without)
		if d, ok := m["depth"].(int64); !ok || d < 1 {
			return nil, fmt.Errorf("%s: type dir needs a depth (a whole number of levels, at least 1), got %v", where, m["depth"])
		}
		return cb, nil
	case "compressed":
	default:
		return cb, nil
	}
	if d, ok := m["decomp"]; ok {
		ds, isStr := d.(string)
		switch ds {
		case "zip", "tgz", "tbz", "tar", "gz", "bz", "infer":
		default:
			if isStr {
				// Intake: ValueError 'Unknown compression for "FILE"'
				return nil, fmt.Errorf("%s: unknown decomp %q: want one of zip, tgz, tbz, tar, gz, bz or infer", where, ds)
			}
			return nil, fmt.Errorf("%s: decomp: want one of zip, tgz, tbz, tar, gz, bz or infer, got %v", where, d)
		}
		cb.Decomp = ds
	}
	if rf, ok := m["regex_filter"]; ok {
		rs, isStr := rf.(string)
		if !isStr {
			return nil, fmt.Errorf("%s: regex_filter: want a regular expression, got %v", where, rf)
		}
		f, err := decomp.CompileFilter(rs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		cb.filter = f
	}
	return cb, nil
}

// archiveSel is the member a zip:// or tar:// chain selects.
type archiveSel struct {
	proto  string // "zip" or "tar"
	member string // a path inside the archive (glob characters allowed)
}

// splitArchiveChain takes an outer zip:// or tar:// layer off an fsspec
// URL ("zip://a.csv::s3://b/x.zip"): the rest is where the archive is.
// Caching layers in front of it (simplecache::) are intakefs's own cache.
func splitArchiveChain(u string) (string, *archiveSel, error) {
	s := stripChain(u)
	for _, proto := range []string{"zip", "tar"} {
		if !strings.HasPrefix(strings.ToLower(s), proto+"://") {
			continue
		}
		rest := s[len(proto)+3:]
		member, inner, ok := strings.Cut(rest, "::")
		if !ok || inner == "" {
			return "", nil, fmt.Errorf("%s: a %s:// URL needs the archive after '::' (%s://MEMBER::URL)", u, proto, proto)
		}
		member = strings.TrimPrefix(member, "/")
		if member == "" {
			return "", nil, fmt.Errorf("%s: no member named before '::'", u)
		}
		return stripChain(inner), &archiveSel{proto: proto, member: member}, nil
	}
	return u, nil, nil
}
