package main

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// jsonExporter sends the generated events to the decisionevents receiver
// as JSON arrays: one event object per log record or span, its attributes
// at the top level, its resource under "resource" (the verifier finds a
// run by service.instance.id).
type jsonExporter struct {
	http *httpExporter
	url  string
}

func newJSONExporter(endpoint string, gzipped bool, workers int) *jsonExporter {
	h := newHTTPExporter(endpoint, gzipped, workers)
	return &jsonExporter{http: h, url: strings.TrimSuffix(h.logsURL, "/v1/logs") + "/v1/decision-events"}
}

func (e *jsonExporter) exportLogs(ctx context.Context, ld plog.Logs) (int64, error) {
	return e.post(ctx, encodeLogs(ld))
}

func (e *jsonExporter) exportTraces(ctx context.Context, td ptrace.Traces) (int64, error) {
	return e.post(ctx, encodeSpans(td))
}

func (e *jsonExporter) close() error { return e.http.close() }

// eventsResponse is the receiver's answer.
type eventsResponse struct {
	Accepted int64  `json:"accepted"`
	Refused  int64  `json:"refused"`
	Error    string `json:"error"`
}

func (e *jsonExporter) post(ctx context.Context, body []byte) (int64, error) {
	code, _, data, err := e.http.do(ctx, e.url, "application/json", body)
	if err != nil {
		return 0, err
	}
	var resp eventsResponse
	jerr := json.Unmarshal(data, &resp)
	switch {
	case code/100 == 2 && jerr == nil:
		return resp.Refused, nil
	case code/100 == 2:
		return 0, nil
	case code == 400 && jerr == nil && resp.Refused > 0 && resp.Accepted == 0:
		// Every event was refused by validation: that is a rejection of
		// each, as in an OTLP partial success, not a failed request.
		return resp.Refused, nil
	}
	msg := strings.TrimSpace(string(data))
	if jerr == nil && resp.Error != "" {
		msg = resp.Error
	}
	return 0, &httpStatusError{code: code, msg: msg}
}

func encodeLogs(ld plog.Logs) []byte {
	b := make([]byte, 0, ld.LogRecordCount()*400)
	b = append(b, '[')
	first := true
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		res := rls.At(i).Resource().Attributes()
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				if !first {
					b = append(b, ',')
				}
				first = false
				b = appendEvent(b, lr.Timestamp(), lr.Attributes(), res)
			}
		}
	}
	return append(b, ']')
}

func encodeSpans(td ptrace.Traces) []byte {
	b := make([]byte, 0, td.SpanCount()*500)
	b = append(b, '[')
	first := true
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		res := rss.At(i).Resource().Attributes()
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sps := sss.At(j).Spans()
			for k := 0; k < sps.Len(); k++ {
				sp := sps.At(k)
				if !first {
					b = append(b, ',')
				}
				first = false
				// The start, as the decisionstore exporter dates a span.
				b = appendEvent(b, sp.StartTimestamp(), sp.Attributes(), res)
			}
		}
	}
	return append(b, ']')
}

// conventionPrefixes are the namespaces the receiver takes at the top level;
// any other attribute goes under "attributes".
var conventionPrefixes = []string{"decision.", "data.", "model.", "gen_ai.", "workflow.", "human.", "business."}

func convention(k string) bool {
	for _, p := range conventionPrefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func appendEvent(b []byte, ts pcommon.Timestamp, attrs, res pcommon.Map) []byte {
	b = append(b, `{"time":"`...)
	b = ts.AsTime().UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	extra := false
	attrs.Range(func(k string, v pcommon.Value) bool {
		if convention(k) {
			b = appendMember(append(b, ','), k, v)
		} else {
			extra = true
		}
		return true
	})
	if extra {
		b = appendObject(append(b, `,"attributes":`...), attrs, func(k string) bool { return !convention(k) })
	}
	if res.Len() > 0 {
		b = appendObject(append(b, `,"resource":`...), res, func(string) bool { return true })
	}
	return append(b, '}')
}

// appendObject writes the members of m that keep selects as a JSON object.
func appendObject(b []byte, m pcommon.Map, keep func(string) bool) []byte {
	b = append(b, '{')
	first := true
	m.Range(func(k string, v pcommon.Value) bool {
		if keep(k) {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendMember(b, k, v)
		}
		return true
	})
	return append(b, '}')
}

// appendMember appends "k":v.
func appendMember(b []byte, k string, v pcommon.Value) []byte {
	b = appendString(b, k)
	b = append(b, ':')
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return appendString(b, v.Str())
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(b, v.Int(), 10)
	case pcommon.ValueTypeDouble:
		f := v.Double()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			// JSON has no literal for these; the receiver parses the string.
			return appendString(b, v.AsString())
		}
		return strconv.AppendFloat(b, f, 'g', -1, 64)
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(b, v.Bool())
	}
	raw, err := json.Marshal(v.AsRaw())
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, raw...)
}

// appendString writes s as a JSON string. Go's strconv quoting differs
// from JSON for control characters, hence this.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		ch := s[i]
		if ch >= 0x20 && ch != '"' && ch != '\\' && ch < utf8.RuneSelf {
			b = append(b, ch)
			i++
			continue
		}
		if ch >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
			continue
		}
		switch ch {
		case '"', '\\':
			b = append(b, '\\', ch)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[ch>>4], hex[ch&0xf])
		}
		i++
	}
	return append(b, '"')
}
