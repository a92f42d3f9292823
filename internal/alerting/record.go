package alerting

import (
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
)

// Record is an alert state change as it travels from the rule evaluator to
// the Alertmanager exporter and the decision store: a log record whose
// attributes are the conventions' alert.* keys. Encode writes one and
// DecodeRecord reads one, so the two sides cannot drift apart.
type Record struct {
	// Alert's labels hold alertname.
	Alert        Alert
	State        string
	Annotations  map[string]string
	GeneratorURL string
}

// Encode writes the record into lr, stamped ts.
func (r Record) Encode(lr plog.LogRecord, ts pcommon.Timestamp) {
	name := r.Alert.Labels["alertname"]
	lr.SetTimestamp(ts)
	lr.SetEventName("alert." + r.State)
	lr.Body().SetStr(name + " " + r.State)
	a := lr.Attributes()
	a.PutStr(conventions.AlertName, name)
	a.PutStr(conventions.AlertState, r.State)
	labels := a.PutEmptyMap(conventions.AlertLabels)
	for k, v := range r.Alert.Labels {
		if k != "alertname" {
			labels.PutStr(k, v)
		}
	}
	ann := a.PutEmptyMap(conventions.AlertAnnotations)
	for k, v := range r.Annotations {
		ann.PutStr(k, v)
	}
	a.PutDouble(conventions.AlertValue, r.Alert.Value)
	a.PutInt(conventions.AlertFingerprint, int64(r.Alert.Fingerprint))
	putTime(a, conventions.AlertActiveAt, r.Alert.ActiveAt)
	putTime(a, conventions.AlertFiredAt, r.Alert.FiredAt)
	putTime(a, conventions.AlertResolvedAt, r.Alert.ResolvedAt)
	if r.GeneratorURL != "" {
		a.PutStr(conventions.AlertGeneratorURL, r.GeneratorURL)
	}
}

func putTime(m pcommon.Map, k string, t time.Time) {
	if !t.IsZero() {
		m.PutStr(k, t.UTC().Format(time.RFC3339Nano))
	}
}

// Decoded is a record as read back, from the evaluator or from another
// producer that sends alert records: nothing in it is guaranteed.
type Decoded struct {
	Record
	// Fingerprint identifies the alert: the record's alert.fingerprint,
	// else one of its labels.
	Fingerprint string
	// Timestamp is the record's own time (zero when it has none).
	Timestamp time.Time
	// BadTimes names the time attributes that did not parse (left zero).
	BadTimes []string
}

// DecodeRecord reads an alert record. Labels hold alertname (empty when
// the record names no alert).
func DecodeRecord(lr plog.LogRecord) Decoded {
	attrs := lr.Attributes()
	d := Decoded{}
	d.State = str(attrs, conventions.AlertState)
	d.Alert.Labels = stringMap(attrs, conventions.AlertLabels)
	if name := str(attrs, conventions.AlertName); name != "" {
		d.Alert.Labels["alertname"] = name
	}
	d.Annotations = stringMap(attrs, conventions.AlertAnnotations)
	d.GeneratorURL = str(attrs, conventions.AlertGeneratorURL)
	if v, ok := attrs.Get(conventions.AlertValue); ok && v.Type() == pcommon.ValueTypeDouble {
		d.Alert.Value = v.Double()
	}
	readTime := func(k string) time.Time {
		s := str(attrs, k)
		if s == "" {
			return time.Time{}
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			d.BadTimes = append(d.BadTimes, k)
			return time.Time{}
		}
		return t
	}
	d.Alert.ActiveAt = readTime(conventions.AlertActiveAt)
	d.Alert.FiredAt = readTime(conventions.AlertFiredAt)
	d.Alert.ResolvedAt = readTime(conventions.AlertResolvedAt)
	if lr.Timestamp() != 0 {
		d.Timestamp = lr.Timestamp().AsTime()
	}
	if v, ok := attrs.Get(conventions.AlertFingerprint); ok && v.AsString() != "" {
		d.Fingerprint = v.AsString()
		if v.Type() == pcommon.ValueTypeInt {
			d.Alert.Fingerprint = uint64(v.Int())
		}
	} else {
		// A producer other than the rule evaluator may leave it out: the
		// label set identifies the alert for Alertmanager too.
		d.Fingerprint = "labels:" + strconv.FormatUint(Fingerprint(d.Alert.Labels), 16)
	}
	return d
}

func str(attrs pcommon.Map, k string) string {
	if v, ok := attrs.Get(k); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

func stringMap(attrs pcommon.Map, k string) map[string]string {
	out := map[string]string{}
	if v, ok := attrs.Get(k); ok && v.Type() == pcommon.ValueTypeMap {
		for mk, mv := range v.Map().All() {
			out[mk] = mv.AsString()
		}
	}
	return out
}
