package decision

import (
	"fmt"
	"unicode/utf8"
)

// AppendEscaped appends p to out with everything that could drive a
// terminal, or pass for another identifier in a dashboard, escaped: control
// characters, DEL, C1 controls, bidirectional overrides and invalid UTF-8
// become \xNN or \u{NNNN}. layout keeps newline and tab as they are, for
// text meant to be read as lines.
func AppendEscaped(out, p []byte, layout bool) []byte {
	for len(p) > 0 {
		r, size := utf8.DecodeRune(p)
		switch {
		case !unsafeRune(r, size), layout && (r == '\n' || r == '\t'):
			out = append(out, p[:size]...)
		case size <= 1:
			out = fmt.Appendf(out, `\x%02x`, p[0])
		default:
			out = fmt.Appendf(out, `\u{%04x}`, r)
		}
		p = p[size:]
	}
	return out
}

// unsafeRune reports whether the rune r, read as size bytes, is escaped:
// invalid UTF-8 (a stray byte), a C0 or C1 control, DEL, or a
// bidirectional override.
func unsafeRune(r rune, size int) bool {
	return (r == utf8.RuneError && size <= 1) || r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) ||
		(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// EscapeIdentifier returns an identifier (a workflow, decision or entity
// ID, a source or queue name) as it is stored: unchanged when it is
// printable UTF-8, else escaped as AppendEscaped does, so that a NUL, an
// escape sequence or a stray byte can neither reach a terminal or a
// dashboard nor split one name into two that look alike.
func EscapeIdentifier(s string) (string, bool) {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if unsafeRune(r, size) {
			return string(AppendEscaped(make([]byte, 0, len(s)+8), []byte(s), false)), true
		}
		i += size
	}
	return s, false
}
