package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

type alertsView struct {
	Alerts []activeAlert `json:"alerts"`
}

type activeAlert struct {
	Name             string            `json:"alertname"`
	State            string            `json:"state"`
	Labels           map[string]string `json:"labels"`
	Value            float64           `json:"value"`
	ActiveAt         time.Time         `json:"active_at"`
	FiredAt          *time.Time        `json:"fired_at,omitempty"`
	Summary          string            `json:"summary,omitempty"`
	ExampleDecisions []string          `json:"example_decisions"`
}

// loadAlerts reads the evaluator's own state (alert_state), as it would
// page, and each firing alert's annotations from alert_history.
func loadAlerts(ctx context.Context, conn driver.Conn, db string) (*alertsView, error) {
	var exists uint8
	if err := conn.QueryRow(ctx, "EXISTS TABLE "+db+".alert_state").Scan(&exists); err != nil {
		return nil, err
	}
	if exists == 0 {
		return nil, fmt.Errorf("%s.alert_state does not exist: no alertrules receiver has evaluated rules on this store yet", db)
	}
	rows, err := conn.Query(ctx, `SELECT s.labels, s.state, s.value, s.active_at, s.fired_at, h.annotations
FROM (SELECT fingerprint, labels, state, value, active_at, fired_at FROM `+db+`.alert_state FINAL
      WHERE is_deleted = 0 AND state IN ('pending', 'firing')) AS s
LEFT JOIN (SELECT fingerprint, argMax(annotations, (time, state = 'firing')) AS annotations FROM `+db+`.alert_history
      WHERE state IN ('pending', 'firing') GROUP BY fingerprint) AS h USING (fingerprint)`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	v := &alertsView{Alerts: []activeAlert{}}
	for rows.Next() {
		var a activeAlert
		var fired time.Time
		var ann map[string]string
		if err := rows.Scan(&a.Labels, &a.State, &a.Value, &a.ActiveAt, &fired, &ann); err != nil {
			return nil, err
		}
		a.Name = a.Labels["alertname"]
		delete(a.Labels, "alertname")
		if fired.Unix() > 0 {
			a.FiredAt = &fired
		}
		a.Summary = ann["summary"]
		a.ExampleDecisions = strings.Fields(ann["example_decisions"])
		v.Alerts = append(v.Alerts, a)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Slice(v.Alerts, func(i, j int) bool {
		a, b := v.Alerts[i], v.Alerts[j]
		if a.State != b.State {
			return a.State == "firing"
		}
		return a.ActiveAt.Before(b.ActiveAt)
	})
	return v, nil
}

func (v *alertsView) text(w io.Writer) {
	if len(v.Alerts) == 0 {
		fmt.Fprintln(w, "no active alerts")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tALERT\tLABELS\tSINCE (UTC)\tVALUE\tEXAMPLE DECISIONS")
	for _, a := range v.Alerts {
		keys := make([]string, 0, len(a.Labels))
		for k := range a.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		labels := make([]string, len(keys))
		for i, k := range keys {
			labels[i] = k + "=" + a.Labels[k]
		}
		since := a.ActiveAt
		if a.FiredAt != nil {
			since = *a.FiredAt
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.4g\t%s\n", a.State, a.Name, strings.Join(labels, ","), since.UTC().Format("2006-01-02 15:04:05"),
			a.Value, strings.Join(a.ExampleDecisions, " "))
	}
	_ = tw.Flush()
	for _, a := range v.Alerts {
		if a.Summary != "" {
			fmt.Fprintf(w, "\n%s: %s", a.Name, a.Summary)
		}
	}
	fmt.Fprintln(w)
}
