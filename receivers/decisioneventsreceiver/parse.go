package decisioneventsreceiver

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// parser is a JSON scanner over one body (or one NDJSON line) that the
// event decoder drives value by value. It decodes straight into pdata with
// no intermediate tree, which is most of the receiver's speed, and it knows
// the exact offset of every problem: encoding/json reports offsets relative
// to its own buffering and replaces invalid UTF-8 without a word.
type parser struct {
	b   []byte
	pos int
	// base is b's offset in the request body, for messages.
	base int
	// buf holds an unescaped string; valid until the next string.
	buf []byte
	// err is the first syntax error; once set, parsing stops.
	err *syntaxError
}

type syntaxError struct {
	off int // in b
	msg string
}

// maxNesting bounds recursion on hostile input such as 10 MB of '[':
// encoding/json stops at the same depth.
const maxNesting = 10000

func (p *parser) fail(format string, args ...any) bool {
	if p.err == nil {
		p.err = &syntaxError{off: p.pos, msg: fmt.Sprintf(format, args...)}
	}
	return false
}

func (p *parser) eof() bool {
	if p.err == nil {
		p.err = &syntaxError{off: len(p.b), msg: "unexpected end of JSON input"}
	}
	return false
}

// unexpected reports the byte at pos (or the end of input) as out of place.
func (p *parser) unexpected(context string) bool {
	if p.pos >= len(p.b) {
		return p.eof()
	}
	return p.fail("invalid character %s %s", quoteChar(p.b[p.pos]), context)
}

func quoteChar(c byte) string {
	switch {
	case c == '\'':
		return `'\''`
	case c == '"':
		return `'"'`
	case c < 0x20 || c >= 0x7f:
		return fmt.Sprintf("'\\x%02x'", c)
	}
	return "'" + string(rune(c)) + "'"
}

func (p *parser) ws() {
	for p.pos < len(p.b) {
		switch p.b[p.pos] {
		case ' ', '\t', '\r', '\n':
			p.pos++
		default:
			return
		}
	}
}

// peek returns the next byte, or 0 at the end.
func (p *parser) peek() byte {
	if p.pos < len(p.b) {
		return p.b[p.pos]
	}
	return 0
}

// str reads the string at pos (which holds '"'). It returns the unescaped
// bytes (a slice of b when there was nothing to unescape, else of p.buf)
// and the body offset of the first byte that is not UTF-8, or -1. Invalid
// bytes become U+FFFD, as encoding/json does; the caller refuses them.
func (p *parser) str() (s []byte, bad int, ok bool) {
	p.pos++
	start := p.pos
	for i := start; i < len(p.b); i++ {
		c := p.b[i]
		if c == '"' {
			p.pos = i + 1
			return p.b[start:i], -1, true
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
	}
	bad = -1
	buf := p.buf[:0]
	i := start
	for i < len(p.b) {
		c := p.b[i]
		switch {
		case c == '"':
			p.pos = i + 1
			p.buf = buf
			return buf, bad, true
		case c == '\\':
			if i+1 >= len(p.b) {
				p.pos = len(p.b)
				return nil, bad, p.eof()
			}
			switch e := p.b[i+1]; e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, ok := p.hex4(i + 2)
				if !ok {
					return nil, bad, false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					// A valid pair is one rune; anything else is U+FFFD and
					// the next escape is read on its own, as in encoding/json.
					if r2, ok := p.peekHex4(i); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							buf = utf8.AppendRune(buf, dec)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				buf = utf8.AppendRune(buf, r)
				continue
			default:
				p.pos = i + 1
				return nil, bad, p.fail("invalid character %s in string escape code", quoteChar(e))
			}
			i += 2
		case c < 0x20:
			p.pos = i
			return nil, bad, p.fail("invalid character %s in string literal", quoteChar(c))
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			i++
		default:
			r, n := utf8.DecodeRune(p.b[i:])
			if r == utf8.RuneError && n == 1 {
				if bad < 0 {
					bad = p.base + i
				}
				buf = append(buf, "\uFFFD"...)
			} else {
				buf = append(buf, p.b[i:i+n]...)
			}
			i += n
		}
	}
	p.pos = len(p.b)
	p.buf = buf
	return nil, bad, p.eof()
}

// hex4 reads the four hex digits of a \u escape starting at i.
func (p *parser) hex4(i int) (rune, bool) {
	var r rune
	for j := i; j < i+4; j++ {
		if j >= len(p.b) {
			p.pos = len(p.b)
			return 0, p.eof()
		}
		c := p.b[j]
		v, ok := hexDigit(c)
		if !ok {
			p.pos = j
			return 0, p.fail("invalid character %s in \\u hexadecimal character escape", quoteChar(c))
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

// peekHex4 reads a \uXXXX escape at i without reporting anything.
func (p *parser) peekHex4(i int) (rune, bool) {
	if i+6 > len(p.b) || p.b[i] != '\\' || p.b[i+1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range p.b[i+2 : i+6] {
		v, ok := hexDigit(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	return r, true
}

// number reads a JSON number at pos and returns its text.
func (p *parser) number() ([]byte, bool) {
	start := p.pos
	i := p.pos
	digits := func() int {
		n := 0
		for i < len(p.b) && '0' <= p.b[i] && p.b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(p.b) && p.b[i] == '-' {
		i++
	}
	switch {
	case i >= len(p.b):
		p.pos = i
		return nil, p.eof()
	case p.b[i] == '0':
		i++
	case '1' <= p.b[i] && p.b[i] <= '9':
		digits()
	default:
		p.pos = i
		return nil, p.unexpected("in numeric literal")
	}
	if i < len(p.b) && p.b[i] == '.' {
		i++
		if digits() == 0 {
			p.pos = i
			return nil, p.unexpected("after decimal point in numeric literal")
		}
	}
	if i < len(p.b) && (p.b[i] == 'e' || p.b[i] == 'E') {
		i++
		if i < len(p.b) && (p.b[i] == '+' || p.b[i] == '-') {
			i++
		}
		if digits() == 0 {
			p.pos = i
			return nil, p.unexpected("in exponent of numeric literal")
		}
	}
	p.pos = i
	return p.b[start:i], true
}

// literal reads true, false or null.
func (p *parser) literal(word string) bool {
	for j := 0; j < len(word); j++ {
		if p.pos >= len(p.b) {
			return p.eof()
		}
		if p.b[p.pos] != word[j] {
			return p.unexpected("in literal " + word + " (expecting '" + word[j:j+1] + "')")
		}
		p.pos++
	}
	return true
}

// object walks the members of the object at pos (which holds '{'),
// calling member with pos at each value; member must consume the value.
func (p *parser) object(member func(key []byte, bad int) bool) bool {
	p.pos++
	p.ws()
	if p.peek() == '}' {
		p.pos++
		return true
	}
	for {
		p.ws()
		if p.peek() != '"' {
			return p.unexpected("looking for beginning of object key string")
		}
		key, bad, ok := p.str()
		if !ok {
			return false
		}
		p.ws()
		if p.peek() != ':' {
			return p.unexpected("after object key")
		}
		p.pos++
		p.ws()
		if !member(key, bad) {
			return false
		}
		p.ws()
		switch p.peek() {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return true
		default:
			return p.unexpected("after object key:value pair")
		}
	}
}

// array walks the elements of the array at pos (which holds '[').
func (p *parser) array(elem func(i int) bool) bool {
	p.pos++
	p.ws()
	if p.peek() == ']' {
		p.pos++
		return true
	}
	for i := 0; ; i++ {
		p.ws()
		if !elem(i) {
			return false
		}
		p.ws()
		switch p.peek() {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return true
		default:
			return p.unexpected("after array element")
		}
	}
}

// skip checks and passes over the value at pos, adding its keys and array
// elements at every depth to *count.
func (p *parser) skip(count *int, depth int) bool {
	switch c := p.peek(); c {
	case '{':
		if depth >= maxNesting {
			return p.fail("exceeded max depth")
		}
		return p.object(func([]byte, int) bool {
			*count++
			return p.skip(count, depth+1)
		})
	case '[':
		if depth >= maxNesting {
			return p.fail("exceeded max depth")
		}
		return p.array(func(int) bool {
			*count++
			return p.skip(count, depth+1)
		})
	case '"':
		_, _, ok := p.str()
		return ok
	case 't':
		return p.literal("true")
	case 'f':
		return p.literal("false")
	case 'n':
		return p.literal("null")
	default:
		if c == '-' || ('0' <= c && c <= '9') {
			_, ok := p.number()
			return ok
		}
		return p.unexpected("looking for beginning of value")
	}
}

// typeAt names the JSON type of the value at pos, for messages.
func (p *parser) typeAt() string {
	switch c := p.peek(); c {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
