package main

import (
	"io"

	decisionattrs "github.com/decisiontrace/decisiontrace/internal/decision"
)

// terminalSafe writes text output with everything that could drive the
// terminal escaped: stored data (workflow names, attribute values, alert
// labels) is whatever a producer sent, and an ESC sequence in it must not
// retitle, recolour or rewrite the on-call engineer's terminal. The
// layout's newlines and tabs stay. JSON output needs none of this:
// encoding/json escapes them itself.
type terminalSafe struct{ w io.Writer }

func (t terminalSafe) Write(p []byte) (int, error) {
	if _, err := t.w.Write(decisionattrs.AppendEscaped(make([]byte, 0, len(p)), p, true)); err != nil {
		return 0, err
	}
	return len(p), nil
}
