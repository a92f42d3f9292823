package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/decisiontrace/decisiontrace/internal/chconn"
)

type sourcesView struct {
	Sources []sourceState `json:"sources"`
}

type sourceState struct {
	Workflow string `json:"workflow"`
	Source   string `json:"source"`
	// From the contract in force (contract_sources); unset for a source no
	// contract lists.
	Required *bool    `json:"required,omitempty"`
	Owner    string   `json:"owner,omitempty"`
	BudgetS  *float64 `json:"budget_s,omitempty"`
	// The freshest data of the last day's signals.
	AsOf       *time.Time `json:"as_of,omitempty"`
	AgeS       *float64   `json:"age_s,omitempty"`
	Available  *bool      `json:"available,omitempty"`
	LastError  string     `json:"last_error,omitempty"`
	LastSignal *time.Time `json:"last_signal,omitempty"`
	// LagS is how far the source's context reads trail the workflow's
	// decisions in event time (read_lag); past MaxContextLagS a decision
	// without a read of a required source is missing, not pending.
	LagS           *float64 `json:"read_lag_s,omitempty"`
	MaxContextLagS *float64 `json:"max_context_lag_s,omitempty"`
	// Status: ok, stale, unavailable, lagging (reads trail decisions past
	// max_context_lag), no_budget, or silent (a contract's source with no
	// signal in the last day).
	Status string `json:"status"`
}

type contractSource struct {
	required bool
	owner    string
	budgetS  float64
}

// loadSources reports, per workflow and source seen in the last day, the
// freshest data the workflow had (max as_of of freshness signals and
// context reads) against the budget of the contract in force, with how far
// its reads trail the workflow's decisions; then the contracts' sources
// that sent nothing.
func loadSources(ctx context.Context, conn driver.Conn, db string, now time.Time) (*sourcesView, error) {
	contracts := map[[2]string]contractSource{}
	rows, err := conn.Query(ctx, `SELECT workflow, source, required, owner, max_age_s FROM `+db+`.contract_sources`)
	if err != nil {
		return nil, fmt.Errorf("contract sources: %w", err)
	}
	for rows.Next() {
		var wf, src string
		var cs contractSource
		if err := rows.Scan(&wf, &src, &cs.required, &cs.owner, &cs.budgetS); err != nil {
			rows.Close()
			return nil, fmt.Errorf("contract sources: %w", err)
		}
		contracts[[2]string{wf, src}] = cs
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("contract sources: %w", err)
	}

	maxLag := map[string]float64{}
	rows, err = conn.Query(ctx, `SELECT workflow, argMax(max_context_lag_s, effective_from) FROM `+db+`.contracts FINAL GROUP BY workflow`)
	if err != nil {
		return nil, fmt.Errorf("contracts: %w", err)
	}
	for rows.Next() {
		var wf string
		var s float64
		if err := rows.Scan(&wf, &s); err != nil {
			rows.Close()
			return nil, fmt.Errorf("contracts: %w", err)
		}
		maxLag[wf] = s
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("contracts: %w", err)
	}

	lags := map[[2]string]float64{}
	rows, err = conn.Query(ctx, `SELECT workflow, source, lag_s FROM `+db+`.read_lag`)
	if err != nil {
		return nil, fmt.Errorf("read lag: %w", err)
	}
	for rows.Next() {
		var wf, src string
		var lag float64
		if err := rows.Scan(&wf, &src, &lag); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read lag: %w", err)
		}
		lags[[2]string{wf, src}] = lag
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read lag: %w", err)
	}

	// Levels only (max, and the latest by time then event ID): a resent
	// signal changes nothing.
	rows, err = conn.Query(ctx, `SELECT workflow, source, max(as_of), max(time),
    argMaxIf(data_available, (time, event_id), data_available IS NOT NULL),
    argMaxIf(data_error, (time, event_id), data_error != '')
FROM `+db+`.events
WHERE layer = 'data' AND event IN ('source.freshness', 'context.read') AND source != ''
  AND time >= `+chconn.MilliParam+` - INTERVAL 1 DAY AND time <= `+chconn.MilliParam+`
GROUP BY workflow, source
ORDER BY workflow, source`, now.UnixMilli(), now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("source signals: %w", err)
	}
	defer rows.Close()
	v := &sourcesView{Sources: []sourceState{}}
	seen := map[[2]string]bool{}
	for rows.Next() {
		var s sourceState
		var last time.Time
		if err := rows.Scan(&s.Workflow, &s.Source, &s.AsOf, &last, &s.Available, &s.LastError); err != nil {
			return nil, fmt.Errorf("source signals: %w", err)
		}
		s.LastSignal = &last
		if s.AsOf != nil {
			age := now.Sub(*s.AsOf).Seconds()
			s.AgeS = &age
		}
		k := [2]string{s.Workflow, s.Source}
		seen[k] = true
		s.describe(contracts, lags, maxLag)
		switch {
		case s.Available != nil && !*s.Available:
			s.Status = "unavailable"
		case s.BudgetS == nil:
			s.Status = "no_budget"
		case s.AgeS == nil || *s.AgeS > *s.BudgetS:
			s.Status = "stale"
		case s.lagging():
			s.Status = "lagging"
		default:
			s.Status = "ok"
		}
		v.Sources = append(v.Sources, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("source signals: %w", err)
	}
	var silent []sourceState
	for k := range contracts {
		if !seen[k] {
			s := sourceState{Workflow: k[0], Source: k[1], Status: "silent"}
			s.describe(contracts, lags, maxLag)
			silent = append(silent, s)
		}
	}
	sort.Slice(silent, func(i, j int) bool {
		if silent[i].Workflow != silent[j].Workflow {
			return silent[i].Workflow < silent[j].Workflow
		}
		return silent[i].Source < silent[j].Source
	})
	v.Sources = append(v.Sources, silent...)
	return v, nil
}

// describe fills in what the contract in force and the read lag say.
func (s *sourceState) describe(contracts map[[2]string]contractSource, lags map[[2]string]float64, maxLag map[string]float64) {
	k := [2]string{s.Workflow, s.Source}
	if cs, ok := contracts[k]; ok {
		required, budget := cs.required, cs.budgetS
		s.Required, s.Owner = &required, cs.owner
		if budget > 0 {
			s.BudgetS = &budget
		}
	}
	if lag, ok := lags[k]; ok {
		s.LagS = &lag
	}
	if m, ok := maxLag[s.Workflow]; ok && m > 0 {
		s.MaxContextLagS = &m
	}
}

func (s *sourceState) lagging() bool {
	return s.LagS != nil && s.MaxContextLagS != nil && *s.LagS > *s.MaxContextLagS
}

func seconds(s *float64) string {
	if s == nil {
		return "-"
	}
	return (time.Duration(*s) * time.Second).String()
}

func (v *sourcesView) text(w io.Writer) {
	if len(v.Sources) == 0 {
		fmt.Fprintln(w, "no source signals in the last day, and no contract lists a source")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKFLOW\tSOURCE\tKIND\tOWNER\tAGE\tBUDGET\tREAD LAG\tSTATUS\tLAST SIGNAL (UTC)\tLAST ERROR")
	for _, s := range v.Sources {
		kind := "-"
		if s.Required != nil {
			kind = map[bool]string{true: "required", false: "optional"}[*s.Required]
		}
		owner := s.Owner
		if owner == "" {
			owner = "-"
		}
		lag := seconds(s.LagS)
		if s.LagS != nil && s.MaxContextLagS != nil {
			lag += " (max " + seconds(s.MaxContextLagS) + ")"
		}
		status := s.Status
		if status != "ok" && status != "no_budget" {
			status = "⚠ " + status
		}
		last := "-"
		if s.LastSignal != nil {
			last = s.LastSignal.UTC().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Workflow, s.Source, kind, owner, seconds(s.AgeS), seconds(s.BudgetS),
			lag, status, last, s.LastError)
	}
	_ = tw.Flush()
}
