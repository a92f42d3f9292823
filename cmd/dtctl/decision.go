package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/store"
)

var errNotFound = errors.New("not found")

// decisionView is one decision: its verdict as the store judges it now, and
// its timeline.
type decisionView struct {
	DecisionID string   `json:"decision_id"`
	Workflow   string   `json:"workflow"`
	LayersSeen []string `json:"layers_seen"`
	Missing    []string `json:"layers_missing"`
	// Verdict is nil when the decision has no model output yet or its
	// workflow no contract.
	Verdict  *store.Verdict `json:"verdict,omitempty"`
	Timeline []step         `json:"timeline"`
}

// step is one event of the timeline; Details are its typed fields that are
// set, in a fixed order, as "key=value".
type step struct {
	Time    time.Time `json:"time"`
	Layer   string    `json:"layer"`
	Event   string    `json:"event"`
	Details []string  `json:"details"`
}

// timelineSQL lists a decision's events in event time, each stored event
// once (a producer that resent a request stored it twice). The rollup,
// ordered by decision_id, knows when the decision happened: the time
// bounds let ClickHouse skip every other day and most granules. Version 1's
// decision.verdict records are left out: the verdict comes from the store.
const timelineSQL = `SELECT time, workflow, layer, event, source, as_of, data_complete, data_available,
    entity_system, entity_id, entity_canonical_id, entity_resolved,
    model_name, model_version, confidence, recommendation, model_latency_ms, model_unsafe,
    queue, route, queue_depth, exception_type, human_action, human_actor, human_reason,
    outcome, cycle_time_s, business_cost, business_value
FROM {db}.events
WHERE decision_id = ? AND event != '` + conventions.EventVerdict + `'
  AND time >= (SELECT min(first_seen) FROM {db}.decision_rollup WHERE decision_id = ?)
  AND time <= (SELECT max(last_seen) FROM {db}.decision_rollup WHERE decision_id = ?)
ORDER BY time, indexOf(['data', 'model', 'workflow', 'human', 'business'], layer), event, event_id
LIMIT 1 BY event_id`

// loadDecision reads the decision's timeline and its live verdict
// (decision_verdicts) at once.
func loadDecision(ctx context.Context, conn driver.Conn, db, id string) (*decisionView, error) {
	type verdictResult struct {
		v   *store.Verdict
		err error
	}
	verdict := make(chan verdictResult, 1)
	go func() {
		v, err := store.New(conn, db, store.Layout{}).Verdict(ctx, id)
		verdict <- verdictResult{v, err}
	}()
	v, err := loadTimeline(ctx, conn, db, id)
	vr := <-verdict
	if err != nil {
		return nil, err
	}
	if vr.err != nil {
		return nil, vr.err
	}
	v.Verdict = vr.v
	return v, nil
}

func loadTimeline(ctx context.Context, conn driver.Conn, db, id string) (*decisionView, error) {
	rows, err := conn.Query(ctx, strings.ReplaceAll(timelineSQL, "{db}", db), id, id, id)
	if err != nil {
		return nil, fmt.Errorf("timeline of %s: %w", id, err)
	}
	defer rows.Close()
	v := &decisionView{DecisionID: id}
	seen := map[string]bool{}
	for rows.Next() {
		var (
			e                                                   step
			wf, source, entSys, entID, entCanon                 string
			asOf                                                *time.Time
			complete, available, resolved, unsafe               *bool
			modelName, modelVersion, rec                        string
			conf, latency, cycle, cost, value                   *float64
			queue, route, exception, action, actor, reason, out string
			depth                                               *int64
		)
		if err := rows.Scan(&e.Time, &wf, &e.Layer, &e.Event, &source, &asOf, &complete, &available,
			&entSys, &entID, &entCanon, &resolved,
			&modelName, &modelVersion, &conf, &rec, &latency, &unsafe,
			&queue, &route, &depth, &exception, &action, &actor, &reason,
			&out, &cycle, &cost, &value); err != nil {
			return nil, fmt.Errorf("timeline of %s: %w", id, err)
		}
		if v.Workflow == "" {
			v.Workflow = wf
		}
		seen[e.Layer] = true
		d := &e.Details
		add(d, "source", source)
		if asOf != nil {
			add(d, "as_of", asOf.UTC().Format(time.RFC3339))
			add(d, "age", e.Time.Sub(*asOf).Round(time.Second).String())
		}
		addBool(d, "complete", complete)
		addBool(d, "available", available)
		if entID != "" {
			ent := entSys + ":" + entID
			if entCanon != "" {
				ent += " → " + entCanon
			}
			add(d, "entity", ent)
		}
		addBool(d, "entity_resolved", resolved)
		add(d, "model", strings.Trim(modelName+" "+modelVersion, " "))
		addFloat(d, "confidence", conf, "%.2f")
		add(d, "recommendation", rec)
		addFloat(d, "latency_ms", latency, "%.0f")
		addBool(d, "unsafe", unsafe)
		add(d, "route", route)
		add(d, "queue", queue)
		if depth != nil {
			add(d, "depth", fmt.Sprint(*depth))
		}
		add(d, "exception", exception)
		add(d, "action", action)
		add(d, "actor", actor)
		add(d, "reason", reason)
		add(d, "outcome", out)
		addFloat(d, "cycle_time_s", cycle, "%.0f")
		addFloat(d, "cost", cost, "%.2f")
		addFloat(d, "value", value, "%.2f")
		v.Timeline = append(v.Timeline, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("timeline of %s: %w", id, err)
	}
	if len(v.Timeline) == 0 {
		return nil, errNotFound
	}
	v.LayersSeen, v.Missing = []string{}, []string{}
	for _, l := range conventions.Layers {
		if seen[l] {
			v.LayersSeen = append(v.LayersSeen, l)
		} else {
			v.Missing = append(v.Missing, l)
		}
	}
	return v, nil
}

func add(d *[]string, k, v string) {
	if v != "" {
		*d = append(*d, k+"="+v)
	}
}

func addBool(d *[]string, k string, v *bool) {
	if v != nil {
		add(d, k, fmt.Sprint(*v))
	}
}

func addFloat(d *[]string, k string, v *float64, format string) {
	if v != nil {
		add(d, k, fmt.Sprintf(format, *v))
	}
}

func (v *decisionView) text(w io.Writer) {
	fmt.Fprintf(w, "decision %s  workflow %s\n", v.DecisionID, v.Workflow)
	var marks []string
	for _, l := range conventions.Layers {
		mark := "-"
		for _, s := range v.LayersSeen {
			if s == l {
				mark = "✓"
			}
		}
		marks = append(marks, l+" "+mark)
	}
	fmt.Fprintf(w, "layers   %s\n", strings.Join(marks, "  "))
	if vd := v.Verdict; vd != nil {
		decided := vd.DecisionTime.UTC().Format("2006-01-02 15:04:05.000") + " UTC"
		if m := strings.TrimSpace(vd.ModelName + " " + vd.ModelVersion); m != "" {
			decided += " by " + m
		}
		if vd.Confidence != nil {
			decided += fmt.Sprintf(", confidence %.2f (floor %.2f)", *vd.Confidence, vd.ConfidenceFloor)
		}
		fmt.Fprintf(w, "decided  %s\n", decided)
		fmt.Fprintf(w, "verdict  %s\n", verdictLine(vd))
		var srcs []string
		for _, s := range []struct {
			what string
			list []string
		}{{"stale", vd.StaleSources}, {"missing", vd.MissingSources}, {"pending", vd.PendingSources}} {
			if len(s.list) > 0 {
				srcs = append(srcs, s.what+" "+strings.Join(s.list, ", "))
			}
		}
		if len(srcs) == 0 {
			srcs = append(srcs, "every required source fresh")
		}
		srcs = append(srcs, "freshness from "+vd.ContextSource, "contract "+vd.ContractHash)
		fmt.Fprintf(w, "sources  %s\n", strings.Join(srcs, " · "))
	} else {
		fmt.Fprintln(w, "verdict  none (no model output yet, or no contract for the workflow)")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME (UTC)\tLAYER\tEVENT\tDETAILS")
	for _, s := range v.Timeline {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Time.UTC().Format("2006-01-02 15:04:05.000"), s.Layer, s.Event, strings.Join(s.Details, " "))
	}
	_ = tw.Flush()
}

// verdictLine is the verdict in one line: the context and why, then what
// the contract prescribes.
func verdictLine(vd *store.Verdict) string {
	line := "context " + vd.Context
	switch vd.Context {
	case conventions.ContextStale:
		if vd.StaleSource != "" && vd.StaleAgeS != nil && vd.StaleBudgetS != nil {
			line += fmt.Sprintf(" (%s %.0fs old, budget %.0fs)", vd.StaleSource, *vd.StaleAgeS, *vd.StaleBudgetS)
		}
	case conventions.ContextMissing:
		line += " (missing " + strings.Join(vd.MissingSources, ", ") + ")"
	case conventions.ContextPending:
		line += " (waiting for " + strings.Join(vd.PendingSources, ", ") + ")"
	}
	if vd.ConfidenceLow {
		line += ", low confidence"
	}
	if vd.UnsupportedCertainty {
		line += ", UNSUPPORTED CERTAINTY"
	}
	if vd.Behaviour != "" {
		line += ", behaviour " + vd.Behaviour
	}
	return line
}
