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
)

var errNotFound = errors.New("not found")

var layers = []string{"data", "model", "workflow", "human", "business"}

// decisionView is one decision: its verdict and its timeline.
type decisionView struct {
	DecisionID string   `json:"decision_id"`
	Workflow   string   `json:"workflow"`
	LayersSeen []string `json:"layers_seen"`
	Missing    []string `json:"layers_missing"`
	Verdict    *verdict `json:"verdict,omitempty"`
	Timeline   []step   `json:"timeline"`
}

type verdict struct {
	Context              string   `json:"context"`
	StaleSource          string   `json:"stale_source,omitempty"`
	StaleAgeS            *float64 `json:"stale_age_s,omitempty"`
	StaleBudgetS         *float64 `json:"stale_budget_s,omitempty"`
	MissingSources       []string `json:"missing_sources,omitempty"`
	ConfidenceLow        bool     `json:"confidence_low"`
	UnsupportedCertainty bool     `json:"unsupported_certainty"`
	Behaviour            string   `json:"behaviour,omitempty"`
}

// step is one event of the timeline; Details are its typed fields that are
// set, in a fixed order, as "key=value".
type step struct {
	Time    time.Time `json:"time"`
	Layer   string    `json:"layer"`
	Event   string    `json:"event"`
	Details []string  `json:"details"`
}

func loadDecision(ctx context.Context, conn driver.Conn, db, id string) (*decisionView, error) {
	rows, err := conn.Query(ctx, `SELECT time, workflow, layer, event, source, as_of, data_complete, data_available,
    entity_system, entity_id, entity_canonical_id, entity_resolved,
    model_name, model_version, confidence, recommendation, model_latency_ms, model_unsafe,
    queue, route, queue_depth, exception_type, human_action, human_actor, human_reason,
    outcome, cycle_time_s, business_cost, business_value,
    verdict_context, verdict_stale_source, verdict_stale_age_s, verdict_stale_budget_s, verdict_missing_sources,
    verdict_confidence_low, verdict_unsupported, verdict_behaviour
FROM `+db+`.events
WHERE decision_id = ?
  -- The rollup, ordered by decision_id, knows when the decision happened:
  -- the time bounds let ClickHouse skip every other day and most granules.
  AND time >= (SELECT min(first_seen) FROM `+db+`.decisions WHERE decision_id = ?)
  AND time <= (SELECT max(last_seen) FROM `+db+`.decisions WHERE decision_id = ?)
ORDER BY time, indexOf(['data', 'model', 'workflow', 'human', 'business'], layer), event = 'decision.verdict', event`, id, id, id)
	if err != nil {
		return nil, err
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
			conf, latency, cycle, cost, value, staleAge, budget *float64
			queue, route, exception, action, actor, reason, out string
			depth                                               *int64
			vctx, staleSrc, behaviour                           string
			missing                                             []string
			confLow, unsupported                                *bool
		)
		if err := rows.Scan(&e.Time, &wf, &e.Layer, &e.Event, &source, &asOf, &complete, &available,
			&entSys, &entID, &entCanon, &resolved,
			&modelName, &modelVersion, &conf, &rec, &latency, &unsafe,
			&queue, &route, &depth, &exception, &action, &actor, &reason,
			&out, &cycle, &cost, &value,
			&vctx, &staleSrc, &staleAge, &budget, &missing, &confLow, &unsupported, &behaviour); err != nil {
			return nil, err
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
		if vctx != "" {
			v.Verdict = &verdict{Context: vctx, StaleSource: staleSrc, StaleAgeS: staleAge, StaleBudgetS: budget,
				MissingSources: missing, ConfidenceLow: confLow != nil && *confLow,
				UnsupportedCertainty: unsupported != nil && *unsupported, Behaviour: behaviour}
			add(d, "context", vctx)
			add(d, "behaviour", behaviour)
			if v.Verdict.UnsupportedCertainty {
				add(d, "unsupported_certainty", "true")
			}
		}
		v.Timeline = append(v.Timeline, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(v.Timeline) == 0 {
		return nil, errNotFound
	}
	v.LayersSeen, v.Missing = []string{}, []string{}
	for _, l := range layers {
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
	for _, l := range layers {
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
		line := "context " + vd.Context
		if vd.StaleSource != "" && vd.StaleAgeS != nil && vd.StaleBudgetS != nil {
			line += fmt.Sprintf(" (%s %.0fs old, budget %.0fs)", vd.StaleSource, *vd.StaleAgeS, *vd.StaleBudgetS)
		}
		if len(vd.MissingSources) > 0 {
			line += " (missing " + strings.Join(vd.MissingSources, ", ") + ")"
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
		fmt.Fprintf(w, "verdict  %s\n", line)
	} else {
		fmt.Fprintln(w, "verdict  none (no contract for the workflow, or not judged yet)")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME (UTC)\tLAYER\tEVENT\tDETAILS")
	for _, s := range v.Timeline {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Time.UTC().Format("2006-01-02 15:04:05.000"), s.Layer, s.Event, strings.Join(s.Details, " "))
	}
	_ = tw.Flush()
}
