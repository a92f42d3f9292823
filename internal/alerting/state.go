// Package alerting holds the alert state machine of decisiontrace's rules:
// per label set, inactive → pending → firing → resolved, with `for`,
// `keep_firing_for`, and missing data as a state of its own, the way
// Prometheus evaluates alerting rules (rules/alerting.go). It knows nothing
// of ClickHouse or Alertmanager: the rule evaluator feeds it each round's
// samples and persists its snapshot; the Alertmanager exporter sends what it
// reports.
package alerting

import (
	"sort"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
)

// State of one alert instance.
type State int

const (
	// StateInactive: not active; a resolved alert stays inactive, with its
	// ResolvedAt, for ResolvedRetention so the resolve is delivered.
	StateInactive State = iota
	// StatePending: the condition holds, for less than the rule's `for`.
	StatePending
	// StateFiring: the condition has held for `for`, or stopped holding
	// less than `keep_firing_for` ago.
	StateFiring
)

func (s State) String() string {
	switch s {
	case StatePending:
		return "pending"
	case StateFiring:
		return "firing"
	}
	return "inactive"
}

// ResolvedRetention is how long a resolved alert is kept and reported, as
// Prometheus keeps them 15 minutes, so that a resolve is not lost to one
// failed notification.
const ResolvedRetention = 15 * time.Minute

// Alert is one instance of a rule: a label set and its timeline. Each
// transition has its own timestamp. When it was last sent and until when it
// is valid (Prometheus' LastSentAt and ValidUntil) belong to the
// alertmanager exporter, which re-sends every firing alert with endsAt
// ahead; after a restart the evaluator re-announces firing alerts at once,
// so nothing of the sending needs persisting.
type Alert struct {
	Fingerprint uint64
	Labels      map[string]string
	State       State
	Value       float64
	// ActiveAt: the condition started holding (pending since).
	ActiveAt time.Time
	// FiredAt: pending became firing.
	FiredAt time.Time
	// ResolvedAt: firing became inactive.
	ResolvedAt time.Time
	// KeepFiringSince: the condition stopped holding while firing, and
	// keep_firing_for keeps the alert firing from then.
	KeepFiringSince time.Time
}

// Fingerprint identifies a label set independently of map order.
func Fingerprint(labels map[string]string) uint64 {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0xff)
		b.WriteString(labels[k])
		b.WriteByte(0xff)
	}
	return xxhash.Sum64String(b.String())
}

// Sample is one label set for which the rule's condition holds this round,
// with the value that made it hold.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Transition is a change of one alert's state in a round.
type Transition struct {
	Alert Alert // a copy, as of after the change
	From  State
	// Resolved is true for firing → inactive.
	Resolved bool
}

// Machine is one rule's alert instances.
type Machine struct {
	For           time.Duration
	KeepFiringFor time.Duration
	alerts        map[uint64]*Alert
}

// NewMachine returns an empty machine for a rule.
func NewMachine(forDur, keepFiringFor time.Duration) *Machine {
	return &Machine{For: forDur, KeepFiringFor: keepFiringFor, alerts: map[uint64]*Alert{}}
}

// Eval applies one evaluation round at now: samples are the label sets for
// which the condition holds. It returns the transitions of the round.
//
// A round with no data at all (the rule's query returned nothing, as when
// a layer falls silent) or a failed query must not be passed here: skipping
// Eval keeps every alert as it is (a pending alert's `for` keeps counting
// from its ActiveAt), so silence never resolves an alert.
func (m *Machine) Eval(now time.Time, samples []Sample) []Transition {
	var out []Transition
	seen := make(map[uint64]struct{}, len(samples))
	for _, s := range samples {
		fp := Fingerprint(s.Labels)
		seen[fp] = struct{}{}
		a, ok := m.alerts[fp]
		if !ok || a.State == StateInactive {
			a = &Alert{Fingerprint: fp, Labels: s.Labels, State: StatePending, Value: s.Value, ActiveAt: now}
			m.alerts[fp] = a
			out = append(out, Transition{Alert: *a, From: StateInactive})
		}
		a.Value = s.Value
		a.KeepFiringSince = time.Time{}
		if a.State == StatePending && now.Sub(a.ActiveAt) >= m.For {
			a.State = StateFiring
			a.FiredAt = now
			out = append(out, Transition{Alert: *a, From: StatePending})
		}
	}
	for fp, a := range m.alerts {
		if _, ok := seen[fp]; ok {
			continue
		}
		switch a.State {
		case StatePending:
			// Never fired: it leaves quietly, as in Prometheus.
			delete(m.alerts, fp)
		case StateFiring:
			if m.KeepFiringFor > 0 {
				if a.KeepFiringSince.IsZero() {
					a.KeepFiringSince = now
				}
				if now.Sub(a.KeepFiringSince) < m.KeepFiringFor {
					continue
				}
			}
			a.State = StateInactive
			a.ResolvedAt = now
			a.KeepFiringSince = time.Time{}
			out = append(out, Transition{Alert: *a, From: StateFiring, Resolved: true})
		case StateInactive:
			if now.Sub(a.ResolvedAt) >= ResolvedRetention {
				delete(m.alerts, fp)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Alert.Fingerprint < out[j].Alert.Fingerprint })
	return out
}

// Active returns copies of the pending and firing alerts and of the
// resolved ones still retained, ordered by fingerprint.
func (m *Machine) Active() []Alert {
	out := make([]Alert, 0, len(m.alerts))
	for _, a := range m.alerts {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Fingerprint < out[j].Fingerprint })
	return out
}

// Restore replaces the machine's alerts with a persisted snapshot, so a
// restarted evaluator neither re-pages nor forgets.
func (m *Machine) Restore(alerts []Alert) {
	m.alerts = make(map[uint64]*Alert, len(alerts))
	for i := range alerts {
		a := alerts[i]
		if a.Fingerprint == 0 {
			a.Fingerprint = Fingerprint(a.Labels)
		}
		m.alerts[a.Fingerprint] = &a
	}
}

// FiringValues returns the values label takes across the firing alerts.
func (m *Machine) FiringValues(label string) map[string]bool {
	out := map[string]bool{}
	for _, a := range m.alerts {
		if a.State == StateFiring {
			out[a.Labels[label]] = true
		}
	}
	return out
}
