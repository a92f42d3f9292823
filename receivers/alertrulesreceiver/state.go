package alertrulesreceiver

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/decisiontrace/decisiontrace/internal/alerting"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/rules"
)

func (r *alertReceiver) render(s string) string { return strings.ReplaceAll(s, "{db}", r.cfg.Database) }

// restore loads every rule's alerts from alert_state, a table of the
// store's schema (internal/store) that prepare has migrated: it holds the
// latest state of every alert instance, and alert_history every state
// change. The firing ones are announced again (with their original
// fired_at) so the Alertmanager exporter re-sends them after a restart:
// Alertmanager sees the same alert, not a new one, and notifies no one
// twice.
func (r *alertReceiver) restore(ctx context.Context) error {
	rows, err := r.conn.Query(ctx, r.render(`SELECT rule_key, fingerprint, labels, state, value, active_at, fired_at, resolved_at, keep_firing_since
FROM {db}.alert_state FINAL WHERE is_deleted = 0`))
	if err != nil {
		return err
	}
	defer rows.Close()
	byRule := map[string][]alerting.Alert{}
	for rows.Next() {
		var key, state string
		var a alerting.Alert
		if err := rows.Scan(&key, &a.Fingerprint, &a.Labels, &state, &a.Value, &a.ActiveAt, &a.FiredAt, &a.ResolvedAt, &a.KeepFiringSince); err != nil {
			return err
		}
		a.State = parseState(state)
		for _, t := range []*time.Time{&a.ActiveAt, &a.FiredAt, &a.ResolvedAt, &a.KeepFiringSince} {
			if t.Unix() <= 0 {
				*t = time.Time{}
			}
		}
		byRule[key] = append(byRule[key], a)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	// The state of rules that no longer exist (removed, renamed, or the
	// evaluator's own alerts under the keys of earlier releases) is
	// deleted: nothing would ever update it, and dtctl would list it.
	var orphans []alerting.Alert
	var orphanKeys []string
	for key, alerts := range byRule {
		if m, _ := r.machineOf(key); m == nil {
			for _, a := range alerts {
				orphans, orphanKeys = append(orphans, a), append(orphanKeys, key)
			}
			delete(byRule, key)
			continue
		}
		for _, a := range alerts {
			if r.persisted[key] == nil {
				r.persisted[key] = map[uint64]bool{}
			}
			r.persisted[key][a.Fingerprint] = true
		}
	}
	if err := r.forget(ctx, orphanKeys, orphans); err != nil {
		return err
	}
	announced, err := r.firingAnnotations(ctx, byRule)
	if err != nil {
		return err
	}
	type restoredAlert struct {
		rule  *rules.Rule
		alert alerting.Alert
	}
	var restored []restoredAlert
	r.mu.Lock()
	for key, alerts := range byRule {
		// The evaluator's own alerts about a rule are keyed by their name
		// and the rule's key; keys of the releases before that (name and
		// rule only, shared across workflows) match no rule.
		m, rl := r.machineOf(key)
		if m == nil {
			continue // a rule that no longer exists
		}
		if _, own := r.byRule[key]; own {
			r.eval.Restore(rl, alerts)
		} else {
			m.Restore(alerts)
		}
		for _, a := range alerts {
			if a.State == alerting.StateFiring {
				restored = append(restored, restoredAlert{rl, a})
			}
		}
	}
	r.mu.Unlock()
	var firing []record
	for _, ra := range restored {
		rec, ok := record{}, false
		if ann, found := announced[ra.alert.Fingerprint]; found {
			// What it paged with; the record's own lookup is not needed.
			rec, ok = r.announce(ra.alert, ann), true
		} else if ra.alert.Labels["alertname"] == ra.rule.Alert {
			rec, ok = r.record(ctx, ra.rule, ra.alert, conventions.AlertStateFiring, r.now()), true
		}
		if !ok {
			continue
		}
		firing = append(firing, rec)
		if ra.alert.Labels["alertname"] == ra.rule.Alert {
			r.mu.Lock()
			r.byRule[ra.rule.Key()].remember(rec)
			r.mu.Unlock()
		}
	}
	r.emit(ctx, firing)
	return nil
}

// appendDeletion adds to an alert_state batch the row that deletes one
// alert's state (ReplacingMergeTree's is_deleted).
func appendDeletion(batch driver.Batch, key string, fp uint64, now time.Time) error {
	return batch.Append(key, fp, map[string]string{}, "", 0.0, time.Time{}, time.Time{}, time.Time{}, time.Time{}, now, uint8(1))
}

// forget deletes the persisted state of alerts (keys[i] is alerts[i]'s).
func (r *alertReceiver) forget(ctx context.Context, keys []string, alerts []alerting.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	batch, err := r.conn.PrepareBatch(r.store.WriteContext(ctx), r.render(`INSERT INTO {db}.alert_state
(rule_key, fingerprint, labels, state, value, active_at, fired_at, resolved_at, keep_firing_since, updated_at, is_deleted)`))
	if err != nil {
		return err
	}
	defer func() { _ = batch.Close() }()
	now := r.now().UTC().Truncate(time.Millisecond)
	for i, a := range alerts {
		if err := appendDeletion(batch, keys[i], a.Fingerprint, now); err != nil {
			return err
		}
	}
	return batch.Send()
}

// machineOf returns the machine a persisted key belongs to, and its rule.
func (r *alertReceiver) machineOf(key string) (*alerting.Machine, *rules.Rule) {
	if ev, ok := r.byRule[key]; ok {
		return r.eval.Machine(ev.rule), ev.rule
	}
	for _, self := range []string{ruleFailingAlert, ruleNoDataAlert} {
		if rest, ok := strings.CutPrefix(key, self+","); ok {
			if ev, ok := r.byRule[rest]; ok {
				if self == ruleFailingAlert {
					return ev.failing, ev.rule
				}
				return ev.noData, ev.rule
			}
		}
	}
	return nil, nil
}

// firingAnnotations returns the annotations each firing alert was paged
// with, from alert_history: re-announced after a restart, the alert keeps
// the summary and example decisions on-call already has.
func (r *alertReceiver) firingAnnotations(ctx context.Context, byRule map[string][]alerting.Alert) (map[uint64]map[string]string, error) {
	var fps []uint64
	for _, alerts := range byRule {
		for _, a := range alerts {
			if a.State == alerting.StateFiring {
				fps = append(fps, a.Fingerprint)
			}
		}
	}
	out := map[uint64]map[string]string{}
	if len(fps) == 0 {
		return out, nil
	}
	rows, err := r.conn.Query(ctx, r.render(`SELECT fingerprint, argMax(annotations, time) FROM {db}.alert_history
WHERE state = 'firing' AND has(?, fingerprint) GROUP BY fingerprint`), fps)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var fp uint64
		var ann map[string]string
		if err := rows.Scan(&fp, &ann); err != nil {
			return nil, err
		}
		out[fp] = ann
	}
	return out, rows.Err()
}

func parseState(s string) alerting.State {
	switch s {
	case conventions.AlertStatePending:
		return alerting.StatePending
	case conventions.AlertStateFiring:
		return alerting.StateFiring
	}
	return alerting.StateInactive
}

// persist writes the group's alerts (present ones, and a deletion for those
// the machines dropped) and the round's state changes.
func (r *alertReceiver) persist(ctx context.Context, g group, now time.Time, recs []record) error {
	// On a cluster, a write returns once every shard has it: a failure is
	// seen (and retried next round) rather than queued on one server.
	wctx := r.store.WriteContext(ctx)
	batch, err := r.conn.PrepareBatch(wctx, r.render(`INSERT INTO {db}.alert_state
(rule_key, fingerprint, labels, state, value, active_at, fired_at, resolved_at, keep_firing_since, updated_at, is_deleted)`))
	if err != nil {
		return err
	}
	defer func() { _ = batch.Close() }()
	r.mu.Lock()
	type row struct {
		key string
		a   alerting.Alert
	}
	var rowsOut []row
	for _, rl := range g.rules {
		ev := r.byRule[rl.Key()]
		for key, m := range map[string]*alerting.Machine{rl.Key(): r.eval.Machine(rl),
			selfKey(ruleFailingAlert, rl): ev.failing, selfKey(ruleNoDataAlert, rl): ev.noData} {
			for _, a := range m.Active() {
				rowsOut = append(rowsOut, row{key, a})
			}
		}
	}
	// Alerts the machines dropped (a pending alert that cleared, a resolved
	// one past retention) are deleted, or a restart would bring them back.
	current := map[string]map[uint64]bool{}
	for _, x := range rowsOut {
		if current[x.key] == nil {
			current[x.key] = map[uint64]bool{}
		}
		current[x.key][x.a.Fingerprint] = true
	}
	var deleted []row
	for key, fps := range r.persisted {
		if !r.inGroup(g, key) {
			continue
		}
		for fp := range fps {
			if !current[key][fp] {
				deleted = append(deleted, row{key, alerting.Alert{Fingerprint: fp}})
			}
		}
	}
	for key := range r.persisted {
		if r.inGroup(g, key) {
			delete(r.persisted, key)
		}
	}
	for key, fps := range current {
		r.persisted[key] = fps
	}
	r.mu.Unlock()
	for _, x := range deleted {
		if err := appendDeletion(batch, x.key, x.a.Fingerprint, now); err != nil {
			return err
		}
	}
	for _, x := range rowsOut {
		state := x.a.State.String()
		if x.a.State == alerting.StateInactive {
			state = conventions.AlertStateResolved
		}
		if err := batch.Append(x.key, x.a.Fingerprint, x.a.Labels, state, x.a.Value, x.a.ActiveAt, x.a.FiredAt, x.a.ResolvedAt,
			x.a.KeepFiringSince, now, uint8(0)); err != nil {
			return err
		}
	}
	if len(rowsOut)+len(deleted) > 0 {
		if err := batch.Send(); err != nil {
			return fmt.Errorf("alert_state: %w", err)
		}
	}
	if len(recs) == 0 {
		return nil
	}
	hist, err := r.conn.PrepareBatch(wctx, r.render(`INSERT INTO {db}.alert_history (time, alertname, fingerprint, state, value, labels, annotations)`))
	if err != nil {
		return err
	}
	defer func() { _ = hist.Close() }()
	for _, rec := range recs {
		// When it happened: a change written rounds later (the store's own
		// alert, while the store was down) keeps its time.
		at := map[string]time.Time{conventions.AlertStatePending: rec.alert.ActiveAt, conventions.AlertStateFiring: rec.alert.FiredAt,
			conventions.AlertStateResolved: rec.alert.ResolvedAt}[rec.state]
		if at.IsZero() {
			at = now
		}
		if err := hist.Append(at, rec.alert.Labels["alertname"], rec.alert.Fingerprint, rec.state, rec.alert.Value, rec.alert.Labels, rec.annotations); err != nil {
			return err
		}
	}
	return hist.Send()
}

// inGroup reports whether a persisted rule key belongs to the group: its
// rules, and the evaluator's own alerts about them.
func (r *alertReceiver) inGroup(g group, key string) bool {
	for _, rl := range g.rules {
		if key == rl.Key() || key == selfKey(ruleFailingAlert, rl) || key == selfKey(ruleNoDataAlert, rl) {
			return true
		}
	}
	return false
}
