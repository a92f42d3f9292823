package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

type sourcesView struct {
	Sources []sourceState `json:"sources"`
}

type sourceState struct {
	Workflow   string     `json:"workflow"`
	Source     string     `json:"source"`
	AsOf       *time.Time `json:"as_of,omitempty"`
	AgeS       *float64   `json:"age_s,omitempty"`
	BudgetS    *float64   `json:"budget_s,omitempty"`
	Available  *bool      `json:"available,omitempty"`
	LastError  string     `json:"last_error,omitempty"`
	LastSignal *time.Time `json:"last_signal,omitempty"`
	// Status: ok, stale, unavailable, no_budget, or silent (a budgeted
	// source with no signal in the last day).
	Status string `json:"status"`
}

// loadSources reports, per workflow and source seen in the last day, the
// freshest data the workflow had (max as_of of freshness signals and
// context reads) against the contract's budget.
func loadSources(ctx context.Context, conn driver.Conn, db string, budgets map[string]map[string]time.Duration, now time.Time) (*sourcesView, error) {
	rows, err := conn.Query(ctx, `SELECT workflow, source, max(as_of), max(time), argMaxIf(data_available, time, data_available IS NOT NULL),
    argMaxIf(data_error, time, data_error != '')
FROM `+db+`.events
WHERE layer = 'data' AND event IN ('source.freshness', 'context.read') AND source != ''
  AND time >= fromUnixTimestamp64Milli(?) - INTERVAL 1 DAY AND time <= fromUnixTimestamp64Milli(?)
GROUP BY workflow, source
ORDER BY workflow, source`, now.UnixMilli(), now.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	v := &sourcesView{Sources: []sourceState{}}
	for rows.Next() {
		var s sourceState
		var last time.Time
		if err := rows.Scan(&s.Workflow, &s.Source, &s.AsOf, &last, &s.Available, &s.LastError); err != nil {
			return nil, err
		}
		s.LastSignal = &last
		if s.AsOf != nil {
			age := now.Sub(*s.AsOf).Seconds()
			s.AgeS = &age
		}
		if b, ok := budgets[s.Workflow][s.Source]; ok {
			secs := b.Seconds()
			s.BudgetS = &secs
		}
		switch {
		case s.Available != nil && !*s.Available:
			s.Status = "unavailable"
		case s.BudgetS == nil:
			s.Status = "no_budget"
		case s.AgeS == nil || *s.AgeS > *s.BudgetS:
			s.Status = "stale"
		default:
			s.Status = "ok"
		}
		v.Sources = append(v.Sources, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, s := range v.Sources {
		seen[s.Workflow+"\x00"+s.Source] = true
	}
	var silent []sourceState
	for wf, m := range budgets {
		for src, b := range m {
			if !seen[wf+"\x00"+src] {
				secs := b.Seconds()
				silent = append(silent, sourceState{Workflow: wf, Source: src, BudgetS: &secs, Status: "silent"})
			}
		}
	}
	sort.Slice(silent, func(i, j int) bool {
		return silent[i].Workflow+silent[i].Source < silent[j].Workflow+silent[j].Source
	})
	v.Sources = append(v.Sources, silent...)
	return v, nil
}

func (v *sourcesView) text(w io.Writer) {
	if len(v.Sources) == 0 {
		fmt.Fprintln(w, "no source signals in the last day")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKFLOW\tSOURCE\tAGE\tBUDGET\tSTATUS\tLAST SIGNAL (UTC)\tLAST ERROR")
	for _, s := range v.Sources {
		age, budget := "-", "-"
		if s.AgeS != nil {
			age = (time.Duration(*s.AgeS) * time.Second).String()
		}
		if s.BudgetS != nil {
			budget = (time.Duration(*s.BudgetS) * time.Second).String()
		}
		status := s.Status
		if status != "ok" && status != "no_budget" {
			status = "⚠ " + status
		}
		last := "-"
		if s.LastSignal != nil {
			last = s.LastSignal.UTC().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Workflow, s.Source, age, budget, status, last, s.LastError)
	}
	_ = tw.Flush()
}
