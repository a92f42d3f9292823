package alertmanagerexporter

import (
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/prometheus/alertmanager/api/v2/models"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/decisiontrace/decisiontrace/internal/alerting"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
)

// Why a log record was not sent, for otelcol_alertmanager_records_skipped.
const (
	skipNoName       = "no_name"
	skipPending      = "pending"
	skipInvalidState = "invalid_state"
)

// alertRecord is one alert record, read from a log record.
type alertRecord struct {
	fingerprint  string
	resolved     bool
	labels       models.LabelSet
	annotations  models.LabelSet
	startsAt     time.Time
	resolvedAt   time.Time // zero: now, at the time of sending
	generatorURL string
	// badTimes names the time attributes that did not parse; the record is
	// sent anyway, with the fallback, because a page late by a few seconds
	// of startsAt beats no page.
	badTimes []string
}

// postable is what Alertmanager is sent for r at now: a firing alert ends
// ahead of now, a resolved one at its resolve time.
func (r *alertRecord) postable(now time.Time, ahead time.Duration) *models.PostableAlert {
	starts, ends := r.startsAt, now.Add(ahead)
	if r.resolved {
		ends = now
		if !r.resolvedAt.IsZero() {
			ends = r.resolvedAt
		}
	}
	if starts.IsZero() || starts.After(ends) {
		// Alertmanager refuses an alert that ends before it starts.
		starts = ends
	}
	return &models.PostableAlert{
		Alert:       models.Alert{Labels: r.labels, GeneratorURL: strfmt.URI(r.generatorURL)},
		Annotations: r.annotations,
		StartsAt:    strfmt.DateTime(starts.UTC()),
		EndsAt:      strfmt.DateTime(ends.UTC()),
	}
}

// parseLogs reads the alert records of ld in order. skipped counts the
// records that are not sent, by reason.
func parseLogs(ld plog.Logs) (recs []*alertRecord, skipped map[string]int64) {
	skipped = map[string]int64{}
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				r, reason := parseRecord(lr)
				if reason != "" {
					skipped[reason]++
					continue
				}
				recs = append(recs, r)
			}
		}
	}
	return recs, skipped
}

func parseRecord(lr plog.LogRecord) (*alertRecord, string) {
	d := alerting.DecodeRecord(lr)
	if d.Alert.Labels["alertname"] == "" {
		return nil, skipNoName
	}
	r := &alertRecord{fingerprint: d.Fingerprint, labels: d.Alert.Labels, annotations: d.Annotations,
		generatorURL: d.GeneratorURL, badTimes: d.BadTimes}
	switch d.State {
	case conventions.AlertStateFiring:
	case conventions.AlertStateResolved:
		r.resolved = true
	case conventions.AlertStatePending:
		// Alertmanager knows only firing and resolved alerts.
		return nil, skipPending
	default:
		return nil, skipInvalidState
	}
	r.startsAt = d.Alert.FiredAt
	if r.startsAt.IsZero() {
		r.startsAt = d.Alert.ActiveAt
	}
	if r.startsAt.IsZero() {
		r.startsAt = d.Timestamp
	}
	if r.resolved {
		r.resolvedAt = d.Alert.ResolvedAt
	}
	return r, ""
}
