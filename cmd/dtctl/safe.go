package main

import (
	"fmt"
	"io"
	"unicode/utf8"
)

// terminalSafe writes text output with everything that could drive the
// terminal escaped: stored data (workflow names, attribute values, alert
// labels) is whatever a producer sent, and an ESC sequence in it must not
// retitle, recolour or rewrite the on-call engineer's terminal. Control
// characters other than the layout's newline and tab, DEL, C1 controls,
// bidirectional overrides and invalid UTF-8 become \xNN or \u{NNNN}. JSON
// output needs none of this: encoding/json escapes them itself.
type terminalSafe struct{ w io.Writer }

func (t terminalSafe) Write(p []byte) (int, error) {
	if _, err := t.w.Write(escapeControls(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

func escapeControls(p []byte) []byte {
	out := make([]byte, 0, len(p))
	for len(p) > 0 {
		r, size := utf8.DecodeRune(p)
		switch {
		case r == utf8.RuneError && size <= 1:
			out = fmt.Appendf(out, `\x%02x`, p[0])
		case r == '\n' || r == '\t':
			out = append(out, p[0])
		case r < 0x20 || r == 0x7f:
			out = fmt.Appendf(out, `\x%02x`, r)
		case r >= 0x80 && r <= 0x9f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			out = fmt.Appendf(out, `\u{%04x}`, r)
		default:
			out = append(out, p[:size]...)
		}
		p = p[size:]
	}
	return out
}
