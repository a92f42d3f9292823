// Package ruletest runs rule unit tests the way `promtool test rules` does:
// input events at times relative to a test's start, and the alerts
// expected firing at given evaluation times, checked on a real ClickHouse.
//
//	rule_files: [../rules/demo.yaml]
//	contracts: [../contracts/*.yaml]     # their default rules too
//	evaluation_interval: 15s
//	tests:
//	  - name: policy-db goes stale
//	    input_events:
//	      - at: 0s
//	        every: 15s
//	        until: 10m
//	        as_of_ago: 20s        # data.as_of = the event's time - 20s (or as_of_at: 5m)
//	        attributes: {decision.workflow: claims-triage, decision.layer: data,
//	                     decision.event: source.freshness, data.source: policy-db}
//	    alert_eval:
//	      - at: 12m
//	        alertname: DecisionSourceStale
//	        expected_alerts:
//	          - labels: {workflow: claims-triage, source: policy-db, severity: page, team: claims-oncall}
//	            annotations: {summary: ...}   # optional; checked when given
package ruletest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.yaml.in/yaml/v3"

	"github.com/decisiontrace/decisiontrace/exporters/decisionstoreexporter"
	"github.com/decisiontrace/decisiontrace/internal/alerting"
	"github.com/decisiontrace/decisiontrace/internal/contract"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/rules"
)

// File is a rule test file.
type File struct {
	RuleFiles          []string          `yaml:"rule_files"`
	Contracts          []string          `yaml:"contracts"`
	EvaluationInterval contract.Duration `yaml:"evaluation_interval"`
	Tests              []Test            `yaml:"tests"`
}

// Test is one scenario on a fresh database.
type Test struct {
	Name        string      `yaml:"name"`
	InputEvents []Input     `yaml:"input_events"`
	AlertEval   []AlertEval `yaml:"alert_eval"`
}

// Input is an event, repeated every Every from At until Until when set.
type Input struct {
	At      contract.Duration `yaml:"at"`
	Every   contract.Duration `yaml:"every"`
	Until   contract.Duration `yaml:"until"`
	AsOfAgo contract.Duration `yaml:"as_of_ago"`
	// AsOfAt pins data.as_of to the test's start + AsOfAt: a source that
	// stopped updating.
	AsOfAt     contract.Duration `yaml:"as_of_at"`
	Attributes map[string]any    `yaml:"attributes"`
}

// AlertEval says which alerts of a rule are firing at At.
type AlertEval struct {
	At             contract.Duration `yaml:"at"`
	AlertName      string            `yaml:"alertname"`
	ExpectedAlerts []Expected        `yaml:"expected_alerts"`
}

// Expected is one firing alert.
type Expected struct {
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// Env is the ClickHouse the tests run on.
type Env struct {
	Addr, Username, Password string
}

// Result of one test.
type Result struct {
	Name     string
	Failures []string
}

// Run runs every test of a test file; rule and contract paths are relative
// to the file. The error is for a file that cannot be run at all.
func Run(ctx context.Context, env Env, path string) ([]Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.EvaluationInterval <= 0 {
		f.EvaluationInterval = contract.Duration(15 * time.Second)
	}
	ruleset, err := loadRules(filepath.Dir(path), f)
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, t := range f.Tests {
		res := Result{Name: t.Name}
		failures, err := runTest(ctx, env, ruleset, f.EvaluationInterval.D(), t)
		if err != nil {
			return out, fmt.Errorf("%s: test %q: %w", path, t.Name, err)
		}
		res.Failures = failures
		out = append(out, res)
	}
	return out, nil
}

func loadRules(dir string, f File) ([]*rules.Rule, error) {
	abs := func(ps []string) []string {
		out := make([]string, 0, len(ps))
		for _, p := range ps {
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			m, _ := filepath.Glob(p)
			out = append(out, m...)
		}
		return out
	}
	groups, err := rules.Load(abs(f.RuleFiles), abs(f.Contracts), f.EvaluationInterval.D())
	if err != nil {
		return nil, err
	}
	var out []*rules.Rule
	for gi := range groups {
		for ri := range groups[gi].Rules {
			out = append(out, &groups[gi].Rules[ri])
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no rules: name rule_files or contracts")
	}
	return out, nil
}

func runTest(ctx context.Context, env Env, ruleset []*rules.Rule, interval time.Duration, t Test) ([]string, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	db := "dt_ruletest_" + hex.EncodeToString(b[:])
	// The scenario ends a little before now: events land in the past, as
	// the store expects, and inside every rule's lookback.
	var end time.Duration
	for _, in := range t.InputEvents {
		end = max(end, in.At.D(), in.Until.D())
	}
	for _, e := range t.AlertEval {
		end = max(end, e.At.D())
	}
	t0 := time.Now().Add(-end - time.Minute).Truncate(time.Second)

	f := decisionstoreexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*decisionstoreexporter.Config)
	cfg.Endpoint = "clickhouse://" + env.Addr
	cfg.Username, cfg.Password = env.Username, configopaque.String(env.Password)
	cfg.Database = db
	cfg.TTL = 0
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	exp, err := f.CreateLogs(ctx, exportertest.NewNopSettings(f.Type()), cfg)
	if err != nil {
		return nil, err
	}
	if err := exp.Start(ctx, componenttest.NewNopHost()); err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{env.Addr}, Auth: clickhouse.Auth{Username: env.Username, Password: env.Password}})
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = exp.Shutdown(context.Background())
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" SYNC")
		_ = conn.Close()
	}()

	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	for i, in := range t.InputEvents {
		for at := in.At.D(); ; at += in.Every.D() {
			ts := t0.Add(at)
			lr := sl.LogRecords().AppendEmpty()
			lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
			if err := lr.Attributes().FromRaw(in.Attributes); err != nil {
				return nil, fmt.Errorf("input_events[%d].attributes: %w", i, err)
			}
			switch {
			case in.AsOfAt > 0:
				lr.Attributes().PutStr(conventions.DataAsOf, t0.Add(in.AsOfAt.D()).Format(time.RFC3339Nano))
			case in.AsOfAgo > 0:
				lr.Attributes().PutStr(conventions.DataAsOf, ts.Add(-in.AsOfAgo.D()).Format(time.RFC3339Nano))
			}
			if in.Every <= 0 || at+in.Every.D() > in.Until.D() {
				break
			}
		}
	}
	if err := exp.ConsumeLogs(ctx, ld); err != nil {
		return nil, fmt.Errorf("loading input events: %w", err)
	}

	machines := make([]*alerting.Machine, len(ruleset))
	for i, r := range ruleset {
		machines[i] = alerting.NewMachine(r.For.D(), r.KeepFiringFor.D())
	}
	evals := append([]AlertEval(nil), t.AlertEval...)
	sort.SliceStable(evals, func(i, j int) bool { return evals[i].At < evals[j].At })
	var failures []string
	next := 0
	for at := time.Duration(0); next < len(evals); at += interval {
		now := t0.Add(at)
		for i, r := range ruleset {
			samples, has, err := r.Eval(ctx, conn, db, now)
			if err != nil {
				return nil, err
			}
			if has {
				s := make([]alerting.Sample, len(samples))
				for j := range samples {
					s[j] = alerting.Sample{Labels: samples[j].Labels, Value: samples[j].Value}
				}
				machines[i].Eval(now, s)
			}
		}
		for next < len(evals) && evals[next].At.D() <= at {
			failures = append(failures, check(evals[next], ruleset, machines)...)
			next++
		}
	}
	return failures, nil
}

type got struct {
	Labels      map[string]string
	Annotations map[string]string
}

func check(e AlertEval, ruleset []*rules.Rule, machines []*alerting.Machine) []string {
	var firing []got
	for i, r := range ruleset {
		if r.Alert != e.AlertName {
			continue
		}
		for _, a := range machines[i].Active() {
			if a.State == alerting.StateFiring {
				labels := map[string]string{}
				for k, v := range a.Labels {
					if k != "alertname" {
						labels[k] = v
					}
				}
				firing = append(firing, got{labels, r.Annotate(rules.TemplateData{Labels: a.Labels, Value: a.Value})})
			}
		}
	}
	var fails []string
	matched := make([]bool, len(firing))
	for _, want := range e.ExpectedAlerts {
		found := false
		for i, g := range firing {
			if matched[i] || !reflect.DeepEqual(g.Labels, want.Labels) {
				continue
			}
			matched[i], found = true, true
			for k, v := range want.Annotations {
				if g.Annotations[k] != v {
					fails = append(fails, fmt.Sprintf("at %s: %s %v: annotation %s is %q, want %q", e.At.D(), e.AlertName, want.Labels, k, g.Annotations[k], v))
				}
			}
			break
		}
		if !found {
			fails = append(fails, fmt.Sprintf("at %s: %s %v expected firing, is not", e.At.D(), e.AlertName, want.Labels))
		}
	}
	for i, g := range firing {
		if !matched[i] {
			fails = append(fails, fmt.Sprintf("at %s: %s %v firing, not expected", e.At.D(), e.AlertName, g.Labels))
		}
	}
	return fails
}

// Summary renders results for people.
func Summary(results []Result) (string, bool) {
	var b strings.Builder
	ok := true
	for _, r := range results {
		if len(r.Failures) == 0 {
			fmt.Fprintf(&b, "PASS %s\n", r.Name)
			continue
		}
		ok = false
		fmt.Fprintf(&b, "FAIL %s\n", r.Name)
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "     %s\n", f)
		}
	}
	return b.String(), ok
}
