package store

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/cespare/xxhash/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/decision"
)

// recordColumns are the events columns that come from the OTLP record
// itself; decision.StoredFields follow them, then tailColumns.
var (
	recordColumns = []string{
		"time", "observed_time", "event_id", "signal",
		"service_name", "trace_id", "span_id", "name", "duration_ns", "severity", "body",
	}
	tailColumns = []string{"attributes", "resource_attributes", "scope_name", "parse_errors"}
)

// insertColumns is the column list of every insert; Events.columns returns
// the columns in exactly this order.
var insertColumns = func() []string {
	cols := append([]string(nil), recordColumns...)
	for _, f := range decision.StoredFields {
		cols = append(cols, f.Column)
	}
	return append(cols, tailColumns...)
}()

func insertStatement(db string) string {
	return fmt.Sprintf("INSERT INTO %s.events (%s)", db, strings.Join(insertColumns, ", "))
}

// Events holds one request's events column by column, as the events table
// stores them: clickhouse-go appends a whole column slice far faster than
// row by row.
type Events struct {
	time, observedTime                   []time.Time
	eventID                              []uint64
	signal, serviceName, traceID, spanID []string
	name                                 []string
	durationNS                           []uint64
	severity, body                       []string
	// fields holds the convention columns, one per decision.StoredFields.
	fields                         []decision.Column
	attributes, resourceAttributes []map[string]string
	scopeName                      []string
	parseErrors                    [][]string

	// counters for the collector's own metrics, per request
	unclassifiedStored, unclassifiedRefused int
	parseErrorsByKey                        map[string]int
}

// newRows sizes every column for n events up front: growing 48 slices
// append by append was a visible share of the exporter's CPU.
func newRows(n int) *Events {
	r := &Events{
		time: mk[time.Time](n), observedTime: mk[time.Time](n), eventID: mk[uint64](n),
		signal: mk[string](n), serviceName: mk[string](n), traceID: mk[string](n), spanID: mk[string](n),
		name: mk[string](n), durationNS: mk[uint64](n), severity: mk[string](n), body: mk[string](n),
		fields:     make([]decision.Column, len(decision.StoredFields)),
		attributes: mk[map[string]string](n), resourceAttributes: mk[map[string]string](n),
		scopeName: mk[string](n), parseErrors: mk[[]string](n),
	}
	for i, f := range decision.StoredFields {
		r.fields[i] = f.NewColumn(n)
	}
	return r
}

func mk[T any](n int) []T { return make([]T, 0, n) }

// Len is the number of events.
func (r *Events) Len() int { return len(r.eventID) }

// ParseErrors counts, per attribute, the values that did not fit their
// convention (stored raw in attributes).
func (r *Events) ParseErrors() map[string]int { return r.parseErrorsByKey }

// Unclassified counts the records without decision.* attributes that were
// kept (layer "unclassified") and refused.
func (r *Events) Unclassified() (stored, refused int) {
	return r.unclassifiedStored, r.unclassifiedRefused
}

// columns returns the column slices in insertColumns order.
func (r *Events) columns() []any {
	cols := make([]any, 0, len(insertColumns))
	cols = append(cols, r.time, r.observedTime, r.eventID, r.signal,
		r.serviceName, r.traceID, r.spanID, r.name, r.durationNS, r.severity, r.body)
	for _, c := range r.fields {
		cols = append(cols, c.Values())
	}
	return append(cols, r.attributes, r.resourceAttributes, r.scopeName, r.parseErrors)
}

// dedupToken identifies a request's content, so that ClickHouse drops a
// retried insert of the same rows (insert_deduplication_token).
func (r *Events) dedupToken() string {
	var b [8]byte
	h := xxhash.New()
	for _, id := range r.eventID {
		binary.LittleEndian.PutUint64(b[:], id)
		_, _ = h.Write(b[:])
	}
	return fmt.Sprintf("dt-%016x-%d", h.Sum64(), len(r.eventID))
}

// builder turns pdata into Events; one per request, not shared.
type builder struct {
	keepUnclassified bool
	now              func() time.Time
	ev               decision.Event
	hash             *xxhash.Digest
	buf              []byte
}

func newBuilder(keepUnclassified bool) *builder {
	return &builder{keepUnclassified: keepUnclassified, now: time.Now, hash: xxhash.New()}
}

// LogEvents turns logs into events; records without decision.* attributes
// are kept with layer "unclassified" when keepUnclassified, else counted
// and left out.
func LogEvents(ld plog.Logs, keepUnclassified bool) *Events {
	return newBuilder(keepUnclassified).logs(ld)
}

// SpanEvents turns spans into events, as LogEvents does logs.
func SpanEvents(td ptrace.Traces, keepUnclassified bool) *Events {
	return newBuilder(keepUnclassified).traces(td)
}

// record is what logs and spans have in common, so one path fills the row.
type record struct {
	signal      string
	time        time.Time
	observed    time.Time
	traceID     pcommon.TraceID
	spanID      pcommon.SpanID
	name        string
	durationNS  uint64
	severity    string
	attrs       pcommon.Map
	resource    pcommon.Map
	resourceMap map[string]string
	serviceName string
	scopeName   string
	// identity beyond IDs and attributes: the record's timestamps (a log's
	// observed time only when it stands in for the record's own) and its
	// body (logs) or name (spans).
	identityT1, identityT2 uint64
	identityText           string
}

func (b *builder) logs(ld plog.Logs) *Events {
	r := newRows(ld.LogRecordCount())
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := rl.Resource().Attributes()
		resMap, svc := flatten(res, nil), serviceName(res)
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				ts := b.eventTime(lr.Timestamp(), lr.ObservedTimestamp())
				name := lr.EventName()
				b.add(r, &record{
					signal: "log", time: ts, observed: lr.ObservedTimestamp().AsTime(),
					traceID: lr.TraceID(), spanID: lr.SpanID(), name: name,
					severity: severity(lr), attrs: lr.Attributes(),
					resource: res, resourceMap: resMap, serviceName: svc, scopeName: sl.Scope().Name(),
					identityT1: uint64(lr.Timestamp()), identityT2: observedIdentity(lr),
					identityText: text(lr.Body()),
				})
			}
		}
	}
	return r
}

// observedIdentity is a log's observed time as part of its identity: only
// when the record has no usable time of its own, and the observed time is
// the one stored. Otherwise it is when something saw the record, not the
// record: the JSON receiver stamps each request's receipt, and a file read
// again after a restart is observed anew, so a resend would be a new event.
func observedIdentity(lr plog.LogRecord) uint64 {
	if _, own := ownTime(lr.Timestamp(), 0); own {
		return 0
	}
	return uint64(lr.ObservedTimestamp())
}

func (b *builder) traces(td ptrace.Traces) *Events {
	r := newRows(td.SpanCount())
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		resMap, svc := flatten(res, nil), serviceName(res)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				var dur uint64
				if sp.EndTimestamp() > sp.StartTimestamp() {
					dur = uint64(sp.EndTimestamp() - sp.StartTimestamp())
				}
				b.add(r, &record{
					signal: "span", time: b.eventTime(sp.StartTimestamp(), sp.EndTimestamp()), observed: sp.EndTimestamp().AsTime(),
					traceID: sp.TraceID(), spanID: sp.SpanID(), name: sp.Name(), durationNS: dur,
					severity: sp.Status().Code().String(), attrs: sp.Attributes(),
					resource: res, resourceMap: resMap, serviceName: svc, scopeName: ss.Scope().Name(),
					identityT1: uint64(sp.StartTimestamp()), identityT2: uint64(sp.EndTimestamp()),
					identityText: sp.Name(),
				})
			}
		}
	}
	return r
}

// eventTime is a record's time: its own, else the fallback (a log's
// observed time, a span's end), else when it is stored (see ownTime),
// instead of 1970, where any TTL would expire it at once. Its event ID
// still derives from the timestamps it was sent with, so a resent copy
// stays one event.
func (b *builder) eventTime(ts, fallback pcommon.Timestamp) time.Time {
	if t, ok := ownTime(ts, fallback); ok {
		return t
	}
	return b.now()
}

func (rec *record) bodyText() string {
	if rec.signal == "log" {
		return rec.identityText
	}
	return ""
}

func (b *builder) add(r *Events, rec *record) {
	ev := &b.ev
	decision.Extract(rec.attrs, rec.time, ev)
	if !ev.Classified {
		if !b.keepUnclassified {
			r.unclassifiedRefused++
			return
		}
		r.unclassifiedStored++
		ev.Layer = conventions.LayerUnclassified
	} else {
		ev.FromResource(rec.resource, rec.time)
	}
	if e := ev.ImpliedEvent(rec.signal == "span"); e != "" {
		ev.Event = e
	}

	r.time = append(r.time, rec.time)
	r.observedTime = append(r.observedTime, rec.observed)
	r.eventID = append(r.eventID, b.eventID(rec))
	r.signal = append(r.signal, rec.signal)
	r.serviceName = append(r.serviceName, rec.serviceName)
	r.traceID = append(r.traceID, traceHex(rec.traceID))
	r.spanID = append(r.spanID, spanHex(rec.spanID))
	r.name = append(r.name, rec.name)
	r.durationNS = append(r.durationNS, rec.durationNS)
	r.severity = append(r.severity, rec.severity)
	r.body = append(r.body, rec.bodyText())
	for _, c := range r.fields {
		c.Append(ev)
	}
	r.attributes = append(r.attributes, flatten(rec.attrs, ev))
	r.resourceAttributes = append(r.resourceAttributes, rec.resourceMap)
	r.scopeName = append(r.scopeName, rec.scopeName)

	var pes []string
	if len(ev.ParseErrors) > 0 {
		if r.parseErrorsByKey == nil {
			r.parseErrorsByKey = map[string]int{}
		}
		pes = make([]string, len(ev.ParseErrors))
		for i, pe := range ev.ParseErrors {
			pes[i] = pe.Error()
			r.parseErrorsByKey[pe.Key]++
		}
	}
	r.parseErrors = append(r.parseErrors, pes)
}

// eventID is the producer's decision.event_id when given, so a producer's
// own retries deduplicate; otherwise a hash of the record's identity and
// content, which is the same each time the collector redelivers it.
func (b *builder) eventID(rec *record) uint64 {
	h := b.hash
	h.Reset()
	if b.ev.EventID != "" {
		_, _ = h.WriteString(b.ev.EventID)
		return h.Sum64()
	}
	_, _ = h.WriteString(rec.signal)
	_, _ = h.Write(rec.traceID[:])
	_, _ = h.Write(rec.spanID[:])
	writeU64(h, rec.identityT1)
	writeU64(h, rec.identityT2)
	_, _ = h.WriteString(rec.identityText)
	b.buf = hashMap(h, rec.attrs, b.buf[:0])
	b.buf = hashMap(h, rec.resource, b.buf)
	return h.Sum64()
}

// hashMap feeds a digest of a map's entries to h that does not depend on
// their order: a producer that resends the same attributes in another order
// sends the same event.
func hashMap(h *xxhash.Digest, m pcommon.Map, buf []byte) []byte {
	var sum uint64
	m.Range(func(k string, v pcommon.Value) bool {
		buf = append(buf[:0], k...)
		buf = append(buf, 0)
		buf = appendValue(buf, v)
		// Multiply-mix each entry so that two equal entries do not cancel.
		sum += xxhash.Sum64(buf)*0x9E3779B97F4A7C15 | 1
		return true
	})
	writeU64(h, sum)
	writeU64(h, uint64(m.Len()))
	return buf
}

func appendValue(buf []byte, v pcommon.Value) []byte {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return append(buf, v.Str()...)
	case pcommon.ValueTypeInt:
		return binary.LittleEndian.AppendUint64(append(buf, 'i'), uint64(v.Int()))
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return append(buf, 't')
		}
		return append(buf, 'f')
	}
	return append(buf, text(v)...)
}

func writeU64(h *xxhash.Digest, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	_, _ = h.Write(b[:])
}

// flatten renders a pdata map as strings. With ev set it leaves out the
// attributes already stored in typed columns, except those whose value did
// not parse: their raw value is kept here so nothing the producer sent is
// lost.
func flatten(m pcommon.Map, ev *decision.Event) map[string]string {
	var out map[string]string // nil when every attribute went to a typed column
	m.Range(func(k string, v pcommon.Value) bool {
		if ev != nil && decision.Typed(k) && !ev.Failed(k) {
			return true
		}
		if out == nil {
			out = make(map[string]string, m.Len())
		}
		out[k] = text(v)
		return true
	})
	return out
}

func serviceName(res pcommon.Map) string {
	if v, ok := res.Get("service.name"); ok {
		return v.AsString()
	}
	return ""
}

func severity(lr plog.LogRecord) string {
	if s := lr.SeverityText(); s != "" {
		return s
	}
	if lr.SeverityNumber() != plog.SeverityNumberUnspecified {
		return lr.SeverityNumber().String()
	}
	return ""
}

func traceHex(id pcommon.TraceID) string {
	if id.IsEmpty() {
		return ""
	}
	return hex.EncodeToString(id[:])
}

func spanHex(id pcommon.SpanID) string {
	if id.IsEmpty() {
		return ""
	}
	return hex.EncodeToString(id[:])
}

// InsertEvents writes one request's events as one native batch. A retried
// insert of the same events is dropped by ClickHouse (its deduplication
// token is their IDs), by the events table and by the materialized views
// that feed on it alike.
func (s *Store) InsertEvents(ctx context.Context, r *Events) error {
	if r.Len() == 0 {
		return nil
	}
	settings := clickhouse.Settings{
		"insert_deduplication_token": r.dedupToken(),
		// ...and the rollup's materialized view drops it too: without this
		// ClickHouse skips the duplicate in events but still feeds it to
		// the views.
		"deduplicate_blocks_in_dependent_materialized_views": 1,
		// Send LowCardinality columns as plain strings and let the server
		// build the dictionaries: clickhouse-go's own LowCardinality encoder
		// hashes every value through an interface and was a tenth of the
		// collector's CPU.
		"low_cardinality_allow_in_native_format": 0,
	}
	if s.layout.Cluster != "" {
		settings["distributed_foreground_insert"] = 1 // see WriteContext
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(settings))
	batch, err := s.conn.PrepareBatch(ctx, insertStatement(s.db))
	if err != nil {
		return fmt.Errorf("prepare insert: %w", err)
	}
	defer func() { _ = batch.Close() }()
	for i, col := range r.columns() {
		if err := batch.Column(i).Append(col); err != nil {
			return &ColumnError{Column: insertColumns[i], Err: err}
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("send %d events: %w", r.Len(), err)
	}
	return nil
}

// ColumnError is a column the driver could not encode: the same events
// would fail again.
type ColumnError struct {
	Column string
	Err    error
}

func (e *ColumnError) Error() string { return "append column " + e.Column + ": " + e.Err.Error() }
func (e *ColumnError) Unwrap() error { return e.Err }
