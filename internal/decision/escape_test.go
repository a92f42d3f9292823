package decision

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestIdentifiersAreStoredEscaped(t *testing.T) {
	for in, want := range map[string]string{
		"claims-triage":       "claims-triage",
		"café ünïcode 理赔":     "café ünïcode 理赔",
		`back\slash`:          `back\slash`,
		"nul\x00name":         `nul\x00name`,
		"esc\x1b]0;pwned\x07": `esc\x1b]0;pwned\x07`,
		"new\nline\ttab":      `new\x0aline\x09tab`,
		"bad\xffutf8":         `bad\xffutf8`,
		"c1\u0085control":     `c1\u{0085}control`,
		"bidi\u202eoverride":  `bidi\u{202e}override`,
		"del\x7f":             `del\x7f`,
		"x' OR 1=1 --":        "x' OR 1=1 --",
	} {
		got, changed := EscapeIdentifier(in)
		assert.Equal(t, want, got, "%q", in)
		assert.Equal(t, in != want, changed, "%q", in)
	}
	// Extract escapes every identifier, and leaves free text (a reviewer's
	// reason) as it is.
	attrs := pcommon.NewMap()
	attrs.PutStr("decision.id", "d\x1b[2J")
	attrs.PutStr("decision.workflow", "w\x00")
	attrs.PutStr("data.source", "s\xfe")
	attrs.PutStr("human.reason", "line one\nline two")
	var ev Event
	Extract(attrs, time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), &ev)
	assert.Equal(t, `d\x1b[2J`, ev.ID)
	assert.Equal(t, `w\x00`, ev.Workflow)
	assert.Equal(t, `s\xfe`, ev.Source)
	assert.Equal(t, "line one\nline two", ev.HumanReason)
	assert.Empty(t, ev.ParseErrors)
}
