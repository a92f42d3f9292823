package decisioneventsreceiver

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/decision"
	"github.com/decisiontrace/decisiontrace/receivers/decisioneventsreceiver/internal/metadata"
)

// kind is the shape of the events an endpoint takes.
type kind uint8

const (
	kindEvents kind = iota // decision.* names, /v1/decision-events
	kindHuman              // the human-actions webhook, /v1/human-actions
)

type format uint8

const (
	formatJSON   format = iota // an array of events, or one event object
	formatNDJSON               // one event per line
)

const (
	// maxErrors bounds the per-event errors one response lists, so a batch
	// of thousands of bad events does not turn into a response larger than
	// the request.
	maxErrors = 1000
	// maxDepth bounds nesting inside attributes: deeper values are almost
	// always a payload embedded by mistake, and OTLP consumers walk them
	// recursively.
	maxDepth = 8
)

// eventError is one problem of one refused event.
type eventError struct {
	// Index is the event's 0-based position among the request's events.
	Index int `json:"index"`
	// Line is the 1-based line of an NDJSON event.
	Line int `json:"line,omitempty"`
	// Path is the field, e.g. [3].model.confidence or [0].attributes.tags[2].
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// requestError refuses a whole request: nothing in it reaches the pipeline.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

type limits struct {
	maxEvents     int
	maxAttributes int
}

// result is a decoded request: the accepted events as log records and what
// was wrong with the others.
type result struct {
	logs     plog.Logs
	events   int
	accepted int
	refused  int
	errors   []eventError
	// omitted counts errors not listed past maxErrors.
	omitted int
	// places are the accepted events' places in the request, in the order
	// they were accepted: a refusal further down the pipeline names
	// records, the client's answer names events.
	places []place
}

// place is an accepted event's place in its request, and which of the
// result's ResourceLogs holds its record (the k-th place of a resource is
// its k-th record).
type place struct{ index, line, resource int32 }

// records is where each place's record is in logs.
func (res *result) records() map[decision.Where]int {
	next := map[int32]int{}
	at := make(map[decision.Where]int, len(res.places))
	for i, p := range res.places {
		at[decision.Where{Resource: int(p.resource), Record: next[p.resource]}] = i
		next[p.resource]++
	}
	return at
}

// withoutRefused takes the records a pipeline refusal names out of the
// result, as refused events that carry the refusal's reasons, and reports
// how many. It changes nothing and reports false when err is not such a
// refusal, or names a record the result does not hold.
func (res *result) withoutRefused(err error) (int, bool) {
	var re *decision.RefusedError
	if err == nil || !consumererror.IsPermanent(err) || !errors.As(err, &re) || len(re.Records) == 0 {
		return 0, false
	}
	at := res.records()
	drop := make(map[int]string, len(re.Records)) // by place
	for _, rec := range re.Records {
		i, ok := at[rec.Where]
		if !ok {
			return 0, false
		}
		if _, twice := drop[i]; twice {
			return 0, false
		}
		drop[i] = rec.Reason
	}
	kept := plog.NewLogs()
	moved := map[int32]int32{} // a resource's position in kept
	for ri, rl := range res.logs.ResourceLogs().All() {
		var dst plog.LogRecordSlice
		for k, lr := range rl.ScopeLogs().At(0).LogRecords().All() {
			i := at[decision.Where{Resource: ri, Record: k}]
			if reason, refused := drop[i]; refused {
				p := res.places[i]
				res.addError(eventError{Index: int(p.index), Line: int(p.line), Path: "[" + strconv.Itoa(int(p.index)) + "]", Reason: reason})
				continue
			}
			if _, ok := moved[int32(ri)]; !ok {
				moved[int32(ri)] = int32(kept.ResourceLogs().Len())
				krl := kept.ResourceLogs().AppendEmpty()
				rl.Resource().CopyTo(krl.Resource())
				ksl := krl.ScopeLogs().AppendEmpty()
				rl.ScopeLogs().At(0).Scope().CopyTo(ksl.Scope())
				dst = ksl.LogRecords()
			}
			lr.MoveTo(dst.AppendEmpty())
		}
	}
	// The kept places in request order, each in its resource's new place:
	// within a resource the records keep their order.
	places := make([]place, 0, len(res.places)-len(drop))
	for i, p := range res.places {
		if _, refused := drop[i]; !refused {
			p.resource = moved[p.resource]
			places = append(places, p)
		}
	}
	// The answer lists events in request order, whoever refused them.
	slices.SortStableFunc(res.errors, func(a, b eventError) int { return a.Index - b.Index })
	res.logs, res.places = kept, places
	res.accepted -= len(drop)
	res.refused += len(drop)
	return len(drop), true
}

// answer is the response's account of the refused events.
func (res *result) answer() response {
	return response{Refused: res.refused, Errors: res.errors, ErrorsOmitted: res.omitted}
}

// addError lists e, or counts it past maxErrors.
func (res *result) addError(e eventError) {
	if len(res.errors) < maxErrors {
		res.errors = append(res.errors, e)
	} else {
		res.omitted++
	}
}

// decoder turns one request body into a result. It is used by one request
// at a time.
type decoder struct {
	lim  limits
	kind kind
	now  time.Time
	res  result
	p    parser

	// The event being decoded: its record, resource, time and problems.
	scratch   plog.LogRecord
	resAttrs  pcommon.Map
	evTime    time.Time
	seen      uint8 // seenTime, seenAttributes, seenResource
	notObject bool
	nExtra    int // values under attributes
	nRes      int // values under resource
	path      []string
	ev        decision.Event
	evErrs    []eventError
	idx       int
	line      int

	slices  map[string]resourceRecords
	lastKey string
	last    resourceRecords
	keyBuf  []byte
	keys    []string
}

const (
	seenTime uint8 = 1 << iota
	seenAttributes
	seenResource
)

func newDecoder(lim limits, k kind, now time.Time) *decoder {
	return &decoder{lim: lim, kind: k, now: now, scratch: plog.NewLogRecord(), resAttrs: pcommon.NewMap()}
}

// decode converts body. A requestError refuses the request whole; otherwise
// the result holds the accepted events and the errors of the refused ones.
func (d *decoder) decode(body []byte, f format) (result, error) {
	d.res = result{logs: plog.NewLogs()}
	var err error
	if f == formatNDJSON {
		err = d.decodeNDJSON(body)
	} else {
		err = d.decodeJSON(body)
	}
	if err != nil {
		return result{}, err
	}
	return d.res, nil
}

func (d *decoder) decodeJSON(body []byte) error {
	i := firstNonSpace(body)
	if i < 0 {
		return errEmpty
	}
	d.p = parser{b: body, pos: i}
	p := &d.p
	switch body[i] {
	case '{':
		if !d.element() {
			return d.malformed()
		}
	case '[':
		over := false
		ok := p.array(func(int) bool {
			if d.res.events == d.lim.maxEvents {
				over = true
				return false
			}
			return d.element()
		})
		if over {
			return tooMany(d.lim.maxEvents)
		}
		if !ok {
			return d.malformed()
		}
	default:
		line, col := position(body, i)
		return &requestError{http.StatusBadRequest, fmt.Sprintf(
			"malformed request at byte %d (line %d, column %d): expected a JSON array of events or one event object", i, line, col)}
	}
	p.ws()
	if p.pos < len(body) {
		line, col := position(body, p.pos)
		return &requestError{http.StatusBadRequest, fmt.Sprintf(
			"malformed JSON at byte %d (line %d, column %d): unexpected data after the top-level value", p.pos, line, col)}
	}
	return nil
}

// element decodes one event of a JSON body; false means a syntax error.
func (d *decoder) element() bool {
	d.idx, d.line = d.res.events, 0
	d.res.events++
	if !d.event() {
		return false
	}
	d.finish()
	return true
}

func (d *decoder) malformed() error {
	off := d.p.err.off
	line, col := position(d.p.b, off)
	return &requestError{http.StatusBadRequest, fmt.Sprintf("malformed JSON at byte %d (line %d, column %d): %s", off, line, col, d.p.err.msg)}
}

func (d *decoder) decodeNDJSON(body []byte) error {
	if firstNonSpace(body) < 0 {
		return errEmpty
	}
	var buf []byte
	for line, start := 1, 0; start < len(body); line++ {
		end := len(body)
		if nl := bytes.IndexByte(body[start:], '\n'); nl >= 0 {
			end = start + nl
		}
		l := body[start:end]
		base := start
		start = end + 1
		i := firstNonSpace(l)
		if i < 0 {
			continue
		}
		if d.res.events == d.lim.maxEvents {
			return tooMany(d.lim.maxEvents)
		}
		d.idx, d.line = d.res.events, line
		d.res.events++
		d.p = parser{b: l, pos: i, base: base, buf: buf}
		ok := d.event()
		buf = d.p.buf
		switch {
		case !ok:
			d.fail("", "malformed JSON at column %d: %s", d.p.err.off+1, d.p.err.msg)
			d.refuse()
		case firstNonSpace(l[d.p.pos:]) >= 0:
			d.fail("", "more than one JSON value on the line at column %d (NDJSON holds one event per line)", d.p.pos+firstNonSpace(l[d.p.pos:])+1)
			d.refuse()
		default:
			d.finish()
		}
	}
	return nil
}

var errEmpty = &requestError{http.StatusBadRequest,
	"empty body: send a JSON array of events (Content-Type: application/json) or one event per line (Content-Type: application/x-ndjson)"}

func tooMany(limit int) error {
	return &requestError{http.StatusRequestEntityTooLarge, fmt.Sprintf(
		"the request holds more than %d events, the receiver's max_events_per_request; split it into smaller requests", limit)}
}

// position is the 1-based line and column (in bytes) of offset off in b.
func position(b []byte, off int) (line, col int) {
	off = min(off, len(b))
	line = 1 + bytes.Count(b[:off], []byte{'\n'})
	return line, off - (bytes.LastIndexByte(b[:off], '\n') + 1) + 1
}

func firstNonSpace(b []byte) int {
	for i, ch := range b {
		switch ch {
		case ' ', '\t', '\r', '\n':
		default:
			return i
		}
	}
	return -1
}

// fail records a problem of the current event; field is relative to the
// event ("" for the event itself).
func (d *decoder) fail(field, format string, args ...any) {
	p := "[" + strconv.Itoa(d.idx) + "]"
	if field != "" {
		if field[0] == '[' {
			p += field
		} else {
			p += "." + field
		}
	}
	d.evErrs = append(d.evErrs, eventError{Index: d.idx, Line: d.line, Path: p, Reason: fmt.Sprintf(format, args...)})
}

// failedAt reports whether the current event already has a problem at
// field (a value that is there but could not be read is not also missing).
func (d *decoder) failedAt(field string) bool {
	p := "[" + strconv.Itoa(d.idx) + "]." + field
	for _, e := range d.evErrs {
		if e.Path == p {
			return true
		}
	}
	return false
}

func (d *decoder) failUTF8(field string, off int, what string) {
	d.fail(field, "invalid UTF-8 in %s (byte %d of the body); text must be UTF-8", what, off)
}

// refuse drops the current event and moves its errors into the result.
func (d *decoder) refuse() {
	d.res.refused++
	// Problems are found in the order of the client's keys; sorted, a
	// response lists them the same way for the same event.
	slices.SortStableFunc(d.evErrs, func(a, b eventError) int { return strings.Compare(a.Path, b.Path) })
	for _, e := range d.evErrs {
		d.res.addError(e)
	}
	d.evErrs = d.evErrs[:0]
	// A refused record may hold anything; start the next one clean.
	d.scratch = plog.NewLogRecord()
}

// name is how the client spelled a convention key in this endpoint's shape.
func (d *decoder) name(key string) string {
	if d.kind == kindHuman {
		if n, ok := humanNames[key]; ok {
			return n
		}
	}
	return key
}

func (d *decoder) overLimit() bool { return d.nExtra+d.nRes > d.lim.maxAttributes }

// event parses the event at the parser's position into the scratch record.
// It returns false on a syntax error; otherwise finish decides the event.
func (d *decoder) event() bool {
	d.evErrs = d.evErrs[:0]
	d.evTime, d.seen, d.notObject, d.nExtra, d.nRes = d.now, 0, false, 0, 0
	d.resAttrs.Clear()
	p := &d.p
	if p.peek() != '{' {
		typ := p.typeAt()
		var n int
		if !p.skip(&n, 0) {
			return false
		}
		d.fail("", "expected a JSON object, got %s", typ)
		d.notObject = true
		return true
	}
	attrs := d.scratch.Attributes()
	// Room for a typical event's fields at once, instead of growing the
	// map several times per event.
	attrs.EnsureCapacity(16)
	if d.kind == kindHuman {
		attrs.PutStr(c.DecisionLayer, c.LayerHuman)
		attrs.PutStr(c.DecisionEvent, c.EventHumanAction)
	}
	return p.object(func(kb []byte, bad int) bool {
		var n int
		if bad >= 0 {
			d.failUTF8("", bad, "a key")
			return p.skip(&n, 1)
		}
		switch string(kb) {
		case keyTime:
			if !d.once(seenTime, keyTime) {
				return p.skip(&n, 1)
			}
			return d.timeValue()
		case keyAttributes:
			if !d.once(seenAttributes, keyAttributes) {
				return p.skip(&n, 1)
			}
			return d.attributes(attrs)
		case keyResource:
			if !d.once(seenResource, keyResource) {
				return p.skip(&n, 1)
			}
			return d.resource()
		}
		var canon string
		if d.kind == kindHuman {
			conv, ok := humanFields[string(kb)]
			if !ok {
				d.fail(string(kb), "unknown field; a human action has decision_id, workflow, action, actor, reason, time, event_id, attributes and resource")
				return p.skip(&n, 1)
			}
			canon = conv
		} else {
			f, ok := eventFields[string(kb)]
			switch {
			case !ok && isVerdict(string(kb)):
				d.fail(string(kb), verdictReason)
				return p.skip(&n, 1)
			case !ok:
				d.fail(string(kb), "unknown field; decision.* conventions go at the top level, anything else under \"attributes\"")
				return p.skip(&n, 1)
			case f.kind == fieldProcessor:
				d.fail(string(kb), "derived by the decision processor; producers do not set it")
				return p.skip(&n, 1)
			}
			canon = f.name
		}
		if _, dup := attrs.Get(canon); dup {
			d.fail(d.name(canon), "duplicate field")
			return p.skip(&n, 1)
		}
		return d.scalar(attrs, canon, "", d.name(canon))
	})
}

// once lets time, attributes and resource appear once in an event: a
// repeat is refused rather than silently overriding the first.
func (d *decoder) once(bit uint8, key string) bool {
	if d.seen&bit == 0 {
		d.seen |= bit
		return true
	}
	d.fail(key, "duplicate field")
	return false
}

// scalar puts the string, number or boolean at the parser's position into m
// under key; errors name prefix+field.
func (d *decoder) scalar(m pcommon.Map, key, prefix, field string) bool {
	p := &d.p
	switch ch := p.peek(); ch {
	case '"':
		s, bad, ok := p.str()
		if !ok {
			return false
		}
		if bad >= 0 {
			d.failUTF8(prefix+field, bad, "a string")
			return true
		}
		m.PutStr(key, string(s))
	case 't':
		if !p.literal("true") {
			return false
		}
		m.PutBool(key, true)
	case 'f':
		if !p.literal("false") {
			return false
		}
		m.PutBool(key, false)
	case 'n':
		return p.literal("null")
	case '{', '[':
		typ := p.typeAt()
		var n int
		if !p.skip(&n, 1) {
			return false
		}
		d.fail(prefix+field, "expected a string, number or boolean, got %s", typ)
	default:
		num, ok := p.number()
		if !ok {
			return false
		}
		if reason := setNumber(m.PutEmpty(key), num); reason != "" {
			d.fail(prefix+field, "%s", reason)
		}
	}
	return true
}

func (d *decoder) timeValue() bool {
	p := &d.p
	var t time.Time
	var reason string
	switch ch := p.peek(); ch {
	case '"':
		s, bad, ok := p.str()
		if !ok {
			return false
		}
		if bad >= 0 {
			d.failUTF8(keyTime, bad, "a string")
			return true
		}
		t, reason = parseTimeString(s)
	case 'n':
		return p.literal("null")
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		num, ok := p.number()
		if !ok {
			return false
		}
		t, reason = parseTimeNumber(num)
		if reason == "" && t.Equal(time.Unix(0, 0)) {
			// 0 is no time, as in OTLP: the event is taken at the
			// receiver's clock, not in 1970 where any TTL deletes it.
			return true
		}
	default:
		typ := p.typeAt()
		var n int
		if !p.skip(&n, 1) {
			return false
		}
		reason = "expected an RFC 3339 string or Unix time, got " + typ
	}
	if reason == "" {
		switch {
		case t.Year() < 1970 || t.Year() > 2262:
			reason = fmt.Sprintf("%s is out of range (1970 to 2262)", t.UTC().Format(time.RFC3339))
		case t.After(d.now.Add(decision.MaxFutureSkew)):
			reason = fmt.Sprintf("%s is more than %s after the receiver's clock", t.UTC().Format(time.RFC3339Nano), decision.MaxFutureSkew)
		}
	}
	if reason != "" {
		d.fail(keyTime, "%s", reason)
		return true
	}
	d.evTime = t
	return true
}

func parseTimeString(s []byte) (time.Time, string) {
	t, err := time.Parse(time.RFC3339Nano, string(bytes.TrimSpace(s)))
	if err != nil {
		return t, fmt.Sprintf("%q is not an RFC 3339 timestamp", clip(string(s)))
	}
	return t, ""
}

func parseTimeNumber(num []byte) (time.Time, string) {
	if i, err := strconv.ParseInt(string(num), 10, 64); err == nil && i >= 0 {
		return decision.Epoch(i), ""
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil || f < 0 || f >= 1e11 {
		return time.Time{}, fmt.Sprintf("%s is not a Unix time", clip(string(num)))
	}
	// A fraction is read as seconds, as Python's time.time() sends.
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), ""
}

// attributes decodes the free-form attributes object into attrs.
func (d *decoder) attributes(attrs pcommon.Map) bool {
	p := &d.p
	if obj, ok := d.objectOrNull(keyAttributes, &d.nExtra); !obj {
		return ok
	}
	return p.object(func(kb []byte, bad int) bool {
		d.nExtra++
		if bad >= 0 {
			d.failUTF8(keyAttributes, bad, "a key")
			return p.skip(&d.nExtra, 2)
		}
		if isVerdict(string(kb)) {
			d.fail(keyAttributes+"."+string(kb), verdictReason)
			return p.skip(&d.nExtra, 2)
		}
		if reservedAttribute(string(kb)) {
			d.fail(keyAttributes+"."+string(kb), "a decisiontrace convention name; set conventions at the top level of the event, where they are checked")
			return p.skip(&d.nExtra, 2)
		}
		if p.peek() == 'n' {
			return p.literal("null") // null is absent, as at the top level
		}
		if d.overLimit() {
			return p.skip(&d.nExtra, 2)
		}
		key := string(kb)
		d.path = append(d.path[:0], keyAttributes, ".", key)
		return d.value(attrs.PutEmpty(key), 1)
	})
}

func (d *decoder) pathString() string { return strings.Join(d.path, "") }

// value decodes any JSON value into dst; depth counts from the attribute.
func (d *decoder) value(dst pcommon.Value, depth int) bool {
	p := &d.p
	if depth > maxDepth {
		d.fail(d.pathString(), "nested more than %d levels deep", maxDepth)
		return p.skip(&d.nExtra, depth)
	}
	switch ch := p.peek(); ch {
	case '"':
		s, bad, ok := p.str()
		if !ok {
			return false
		}
		if bad >= 0 {
			d.failUTF8(d.pathString(), bad, "a string")
			return true
		}
		dst.SetStr(string(s))
	case 't':
		dst.SetBool(true)
		return p.literal("true")
	case 'f':
		dst.SetBool(false)
		return p.literal("false")
	case 'n':
		return p.literal("null")
	case '{':
		m := dst.SetEmptyMap()
		n := len(d.path)
		return p.object(func(kb []byte, bad int) bool {
			d.nExtra++
			if bad >= 0 {
				d.failUTF8(d.pathString(), bad, "a key")
				return p.skip(&d.nExtra, depth+1)
			}
			if p.peek() == 'n' {
				return p.literal("null")
			}
			if d.overLimit() {
				return p.skip(&d.nExtra, depth+1)
			}
			key := string(kb)
			d.path = append(d.path[:n], ".", key)
			ok := d.value(m.PutEmpty(key), depth+1)
			d.path = d.path[:n]
			return ok
		})
	case '[':
		s := dst.SetEmptySlice()
		n := len(d.path)
		return p.array(func(i int) bool {
			d.nExtra++
			if d.overLimit() {
				return p.skip(&d.nExtra, depth+1)
			}
			d.path = append(d.path[:n], "["+strconv.Itoa(i)+"]")
			ok := d.value(s.AppendEmpty(), depth+1)
			d.path = d.path[:n]
			return ok
		})
	default:
		num, ok := p.number()
		if !ok {
			return false
		}
		if reason := setNumber(dst, num); reason != "" {
			d.fail(d.pathString(), "%s", reason)
		}
	}
	return true
}

// objectOrNull reads up to the object that field holds: obj is false when
// it holds none (null, or another value, which fails the field and is
// skipped, counted in n), and ok then says whether reading can go on.
func (d *decoder) objectOrNull(field string, n *int) (obj, ok bool) {
	p := &d.p
	switch p.peek() {
	case 'n':
		return false, p.literal("null")
	case '{':
		return true, true
	}
	typ := p.typeAt()
	if !p.skip(n, 1) {
		return false, false
	}
	d.fail(field, "expected a JSON object, got %s", typ)
	return false, true
}

// resource decodes the event's resource object into d.resAttrs.
func (d *decoder) resource() bool {
	p := &d.p
	if obj, ok := d.objectOrNull(keyResource, &d.nRes); !obj {
		return ok
	}
	return p.object(func(kb []byte, bad int) bool {
		d.nRes++
		if bad >= 0 {
			d.failUTF8(keyResource, bad, "a key")
			return p.skip(&d.nRes, 2)
		}
		if d.overLimit() {
			return p.skip(&d.nRes, 2)
		}
		key := string(kb)
		return d.scalar(d.resAttrs, key, keyResource+".", key)
	})
}

// finish checks the parsed event as a whole and accepts or refuses it.
func (d *decoder) finish() {
	if d.notObject {
		d.refuse()
		return
	}
	lr := d.scratch
	attrs := lr.Attributes()
	decision.Extract(attrs, d.evTime, &d.ev)
	ev := &d.ev
	// A blank ID, workflow or event joins nothing and names nothing.
	ev.ID, ev.Workflow, ev.Event = strings.TrimSpace(ev.ID), strings.TrimSpace(ev.Workflow), strings.TrimSpace(ev.Event)
	for _, pe := range ev.ParseErrors {
		if !d.failedAt(d.name(pe.Key)) {
			d.fail(d.name(pe.Key), "%s", pe.Reason)
		}
	}
	// From here a field with a problem of its own (a parse error above, or
	// one the decoder found) is not also reported missing.
	if ev.Event == "" && !d.failedAt(d.name(c.DecisionEvent)) {
		d.fail(c.DecisionEvent, "required: what happened, e.g. model.output or human.action")
	}
	if ev.Workflow == "" && !d.failedAt(d.name(c.DecisionWorkflow)) {
		d.fail(d.name(c.DecisionWorkflow), "required: the AI workflow the event belongs to, e.g. claims-triage")
	}
	if ev.Layer == "" && !d.failedAt(d.name(c.DecisionLayer)) {
		d.fail(c.DecisionLayer, "required: one of %s (it could not be inferred from the other fields)", strings.Join(c.Layers, ", "))
	} else if _, set := attrs.Get(c.DecisionLayer); !set && ev.Layer != "" {
		attrs.PutStr(c.DecisionLayer, ev.Layer)
	}
	if ev.ID == "" && !d.failedAt(d.name(c.DecisionID)) && ev.Event != "" && !decision.SharedEvent(ev.Event) {
		d.fail(d.name(c.DecisionID), "required for decision-scoped events (every event but %s and %s)", c.EventSourceFreshness, c.EventQueueDepth)
	}
	if d.kind == kindHuman && ev.HumanAction == "" && !d.failedAt(d.name(c.HumanAction)) {
		d.fail(d.name(c.HumanAction), "required: one of accepted, overridden, modified, ignored, escalated")
	} else if _, known := humanActions[ev.HumanAction]; ev.HumanAction != "" && !known {
		d.fail(d.name(c.HumanAction), "%q is not a human action (want one of accepted, overridden, modified, ignored, escalated)", clip(ev.HumanAction))
	}
	if d.overLimit() {
		field := keyAttributes
		if d.nExtra == 0 {
			field = keyResource
		}
		d.fail(field, "%d attribute values (every key and array element counts, attributes and resource together), more than max_attributes_per_event (%d)", d.nExtra+d.nRes, d.lim.maxAttributes)
	}
	if len(d.evErrs) > 0 {
		d.refuse()
		return
	}
	lr.SetTimestamp(pcommon.NewTimestampFromTime(d.evTime))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(d.now))
	lr.SetEventName(ev.Event)
	rr := d.records()
	lr.MoveTo(rr.records.AppendEmpty())
	d.res.places = append(d.res.places, place{index: int32(d.idx), line: int32(d.line), resource: int32(rr.resource)})
	d.res.accepted++
}

// resourceRecords are the log records of one ResourceLogs of the result,
// and its position.
type resourceRecords struct {
	records  plog.LogRecordSlice
	resource int
}

// records returns the log records of the ResourceLogs for the event's
// resource, creating it on first use, so events of one producer share one
// ResourceLogs.
func (d *decoder) records() resourceRecords {
	key := d.resourceKey()
	if d.slices != nil && key == d.lastKey {
		return d.last
	}
	if d.slices == nil {
		d.slices = map[string]resourceRecords{}
	}
	rr, ok := d.slices[key]
	if ok {
		key = strings.Clone(key)
	} else {
		rls := d.res.logs.ResourceLogs()
		rr.resource = rls.Len()
		rl := rls.AppendEmpty()
		d.resAttrs.CopyTo(rl.Resource().Attributes())
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName(metadata.ScopeName)
		rr.records = sl.LogRecords()
		key = strings.Clone(key)
		d.slices[key] = rr
	}
	d.lastKey, d.last = key, rr
	return rr
}

// resourceKey is equal for equal resources whatever the key order. It
// aliases d.keyBuf: clone it to keep it.
func (d *decoder) resourceKey() string {
	if d.resAttrs.Len() == 0 {
		return ""
	}
	d.keys = d.keys[:0]
	d.resAttrs.Range(func(k string, _ pcommon.Value) bool {
		d.keys = append(d.keys, k)
		return true
	})
	sort.Strings(d.keys)
	b := d.keyBuf[:0]
	for _, k := range d.keys {
		v, _ := d.resAttrs.Get(k)
		b = strconv.AppendQuote(b, k)
		b = append(b, '=', byte('0'+v.Type()))
		b = strconv.AppendQuote(b, v.AsString())
		b = append(b, ';')
	}
	d.keyBuf = b
	return unsafeString(b)
}

// setNumber keeps integers as integers so counts and depths stay exact.
func setNumber(dst pcommon.Value, num []byte) string {
	// Only a number without fraction or exponent can be an integer; not
	// trying the others spares ParseInt's error allocation.
	if bytes.IndexAny(num, ".eE") < 0 {
		if i, err := strconv.ParseInt(string(num), 10, 64); err == nil {
			dst.SetInt(i)
			return ""
		}
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil || math.IsInf(f, 0) {
		return clip(string(num)) + " is out of range for a 64-bit number"
	}
	dst.SetDouble(f)
	return ""
}

// clip keeps an echoed value short in an error message.
func clip(s string) string {
	if len(s) > 64 {
		s = s[:64]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		return s + "…"
	}
	return s
}

// unsafeString views b as a string for a map lookup without a copy; the
// caller clones it before keeping it.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
