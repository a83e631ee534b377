package sqldb

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Rebind returns query with its ? placeholders numbered $1, $2, … in
// order, for PostgreSQL. A ? inside a single-quoted literal, a
// double-quoted identifier, a -- or /* */ comment, or a dollar-quoted
// string ($$…$$, $tag$…$tag$) is text, not a placeholder, and is left
// alone. A query without ? is returned unchanged.
func Rebind(query string) string {
	if !strings.ContainsRune(query, '?') {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); {
		c := query[i]
		var j int // end of a span copied verbatim
		switch {
		case c == '\'' || c == '"':
			j = endQuoted(query, i, c)
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			j = strings.IndexByte(query[i:], '\n')
			if j < 0 {
				j = len(query)
			} else {
				j += i
			}
		case c == '/' && i+1 < len(query) && query[i+1] == '*':
			j = endBlockComment(query, i)
		case c == '$' && (i == 0 || !isIdentByte(query[i-1])):
			j = endDollarQuoted(query, i)
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			i++
			continue
		default:
			j = i + 1
		}
		b.WriteString(query[i:j])
		i = j
	}
	return b.String()
}

// endQuoted returns the index just past the quoted span that starts at i
// with quote q; a doubled quote inside is part of the span. An unclosed
// span runs to the end.
func endQuoted(s string, i int, q byte) int {
	for j := i + 1; j < len(s); j++ {
		if s[j] == q {
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(s)
}

// endBlockComment returns the index just past the /* */ comment at i;
// PostgreSQL nests them.
func endBlockComment(s string, i int) int {
	depth := 0
	for j := i; j+1 < len(s); j++ {
		switch {
		case s[j] == '/' && s[j+1] == '*':
			depth++
			j++
		case s[j] == '*' && s[j+1] == '/':
			depth--
			j++
			if depth == 0 {
				return j + 1
			}
		}
	}
	return len(s)
}

// endDollarQuoted returns the index just past the dollar-quoted string
// starting at i ($$…$$ or $tag$…$tag$), or i+1 if s[i] starts none (a
// positional parameter such as $1, or a lone $).
func endDollarQuoted(s string, i int) int {
	j := i + 1
	for j < len(s) && isIdentByte(s[j]) && s[j] != '$' {
		if j == i+1 && s[j] >= '0' && s[j] <= '9' {
			return i + 1 // $1: a parameter, not a tag
		}
		j++
	}
	if j >= len(s) || s[j] != '$' {
		return i + 1
	}
	tag := s[i : j+1]
	end := strings.Index(s[j+1:], tag)
	if end < 0 {
		return len(s)
	}
	return j + 1 + end + len(tag)
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 ||
		('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// rebindCacheMax bounds the rebind cache: queries built at run time (an
// IN list of n placeholders) must not grow it without end.
const rebindCacheMax = 4096

// rebindCache remembers Rebind's result per query text.
type rebindCache struct {
	m sync.Map     // query → rebound query
	n atomic.Int64 // entries in m, approximately
}

func (c *rebindCache) get(query string) string {
	if v, ok := c.m.Load(query); ok {
		return v.(string)
	}
	r := Rebind(query)
	if c.n.Load() < rebindCacheMax {
		if _, loaded := c.m.LoadOrStore(query, r); !loaded {
			c.n.Add(1)
		}
	}
	return r
}
