// Package ruleunit runs rule unit tests the way `promtool test rules` does:
// input events at times relative to a test's start, and the alerts
// expected firing at given evaluation times, checked on a real ClickHouse.
//
//	rule_files: [../rules/demo.yaml]
//	contracts: [../contracts/*.yaml]     # written into the store; their default rules too
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
//	      - at: 0s
//	        every: 15s
//	        until: 10m
//	        arrives_after: 4m     # stamped at its time, stored 4 minutes later
//	        attributes: {decision.id: 'claim-{n}', ...}   # {n}: 0, 1, 2... per repetition
//	    alert_eval:
//	      - at: 12m
//	        alertname: DecisionSourceStale
//	        expected_alerts:
//	          - labels: {workflow: claims-triage, source: policy-db, severity: page, team: claims-oncall}
//	            annotations: {summary: ...}   # optional; checked when given
//	      - {at: 0s, until: 20m, alertname: DecisionMissingContext, expected_alerts: []}   # at every evaluation
//
// Each test runs on a database of its own, migrated by internal/store, with
// the contracts written into it. Time is virtual: a test's 0s is
// Env.Start, and at every evaluation step (evaluation_interval apart) the
// events that have arrived by then are stored, as the collector would store
// them, the verdicts are refreshed, and every rule is evaluated, as the
// alertrules receiver does. An event reaches the store at its own time, or
// arrives_after later: late context, a batching log shipper, a backlog.
// Annotations see the firing alert's example decisions (3, as the
// receiver's default) and no dashboard URL.
package ruleunit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/decisiontrace/decisiontrace/internal/alerting"
	"github.com/decisiontrace/decisiontrace/internal/contract"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/rules"
	"github.com/decisiontrace/decisiontrace/internal/store"
	"github.com/decisiontrace/decisiontrace/internal/strictyaml"
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
// In its string attributes, {n} is the repetition's number (0 at At, 1 at
// At + Every, ...), so that inputs on the same schedule share decision IDs.
type Input struct {
	At      contract.Duration `yaml:"at"`
	Every   contract.Duration `yaml:"every"`
	Until   contract.Duration `yaml:"until"`
	AsOfAgo contract.Duration `yaml:"as_of_ago"`
	// AsOfAt pins data.as_of to the test's start + AsOfAt: a source that
	// stopped updating.
	AsOfAt contract.Duration `yaml:"as_of_at"`
	// ArrivesAfter delays when the event reaches the store: its time is
	// still At (+ Every...), but it is stored ArrivesAfter later.
	ArrivesAfter contract.Duration `yaml:"arrives_after"`
	Attributes   map[string]any    `yaml:"attributes"`
}

// AlertEval says which alerts of a rule are firing at At, or, with Until,
// at every evaluation from At to Until: `expected_alerts: []` over a range
// says the rule never fires in it.
type AlertEval struct {
	At             contract.Duration `yaml:"at"`
	Until          contract.Duration `yaml:"until"`
	AlertName      string            `yaml:"alertname"`
	ExpectedAlerts []Expected        `yaml:"expected_alerts"`
}

// Expected is one firing alert.
type Expected struct {
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// Env is the ClickHouse the tests run on, and the instant a test starts.
type Env struct {
	Addr, Username, Password string
	// Start is every test's 0s; zero means DefaultStart. Rules are
	// evaluated at Start + the step, never at the wall clock's time, so a
	// test gives the same result on any day.
	Start time.Time
}

// DefaultStart is a test's 0s unless Env says otherwise. Use {now} (the
// evaluation time), not now(), in custom SQL.
var DefaultStart = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// exampleDecisions is how many example decisions annotations get, as the
// alertrules receiver's default.
const exampleDecisions = 3

// Result of one test.
type Result struct {
	Name     string
	Failures []string
}

// Run runs every test of a test file; rule and contract paths are relative
// to the file. The error is for a file that cannot be run at all: it names
// the file, the test and the field.
func Run(ctx context.Context, env Env, path string) ([]Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f File
	if err := strictyaml.Decode(path, b, &f); err != nil {
		return nil, err
	}
	if f.EvaluationInterval == 0 {
		f.EvaluationInterval = contract.Duration(15 * time.Second)
	}
	ruleset, contracts, errLoad := load(path, f)
	if err := errors.Join(errLoad, f.validate(path, ruleset)); err != nil {
		return nil, err
	}
	if env.Start.IsZero() {
		env.Start = DefaultStart
	}
	var out []Result
	for _, t := range f.Tests {
		failures, err := runTest(ctx, env, ruleset, contracts, f.EvaluationInterval.D(), t)
		if err != nil {
			return out, fmt.Errorf("%s: test %q: %w", path, t.Name, err)
		}
		out = append(out, Result{Name: t.Name, Failures: failures})
	}
	return out, nil
}

// validate checks the tests; every problem names the test and the field.
func (f *File) validate(path string, ruleset []*rules.Rule) error {
	var errs []error
	bad := func(where, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", path, where, fmt.Sprintf(format, args...)))
	}
	if f.EvaluationInterval < 0 {
		bad("evaluation_interval", "must be positive, got %s", f.EvaluationInterval.D())
	}
	if len(f.Tests) == 0 {
		bad("tests", "at least one test is required")
	}
	alerts := map[string]bool{}
	for _, r := range ruleset {
		alerts[r.Alert] = true
	}
	names := map[string]bool{}
	for ti, t := range f.Tests {
		test := fmt.Sprintf("tests[%d]", ti)
		switch {
		case t.Name == "":
			bad(test+".name", "required")
		case names[t.Name]:
			bad(test+".name", "%q is the name of another test too", t.Name)
		default:
			test = fmt.Sprintf("test %q", t.Name)
		}
		names[t.Name] = true
		for i, in := range t.InputEvents {
			field := func(name string) string { return fmt.Sprintf("%s: input_events[%d].%s", test, i, name) }
			for _, d := range []struct {
				name string
				v    contract.Duration
			}{{"at", in.At}, {"every", in.Every}, {"until", in.Until}, {"as_of_ago", in.AsOfAgo}, {"as_of_at", in.AsOfAt}, {"arrives_after", in.ArrivesAfter}} {
				if d.v < 0 {
					bad(field(d.name), "must not be negative, got %s", d.v.D())
				}
			}
			if in.Until != 0 && in.Every <= 0 {
				bad(field("until"), "needs every (how often the event repeats until then)")
			}
			if in.Every > 0 && in.Until < in.At {
				bad(field("until"), "%s is before at (%s)", in.Until.D(), in.At.D())
			}
			if in.AsOfAgo != 0 && in.AsOfAt != 0 {
				bad(field("as_of_ago"), "give as_of_ago or as_of_at, not both")
			}
			if len(in.Attributes) == 0 {
				bad(field("attributes"), "required")
			} else if err := pcommon.NewMap().FromRaw(in.Attributes); err != nil {
				bad(field("attributes"), "%v", err)
			}
		}
		if len(t.AlertEval) == 0 {
			bad(test+".alert_eval", "at least one evaluation is required")
		}
		for i, e := range t.AlertEval {
			field := func(name string) string { return fmt.Sprintf("%s: alert_eval[%d].%s", test, i, name) }
			if e.At < 0 {
				bad(field("at"), "must not be negative, got %s", e.At.D())
			}
			if e.Until != 0 && e.Until < e.At {
				bad(field("until"), "%s is before at (%s)", e.Until.D(), e.At.D())
			}
			if !alerts[e.AlertName] {
				bad(field("alertname"), "no rule of the rule files or contracts is named %q", e.AlertName)
			}
		}
	}
	return errors.Join(errs...)
}

// load reads the rules (the rule files' and the contracts' defaults) and
// the contracts, named relative to the test file at path.
func load(path string, f File) ([]*rules.Rule, map[string]*contract.Contract, error) {
	dir := filepath.Dir(path)
	ruleFiles, errs := contract.Expand(dir, "rule_files", f.RuleFiles)
	contractFiles, errContracts := contract.Expand(dir, "contracts", f.Contracts)
	errs = append(errs, errContracts...)
	for i, err := range errs {
		errs[i] = fmt.Errorf("%s: %w", path, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	contracts, errLoad := contract.Load(contractFiles)
	groups, err := rules.Load(ruleFiles, contracts, f.EvaluationInterval.D())
	if err := errors.Join(errLoad, err); err != nil {
		return nil, nil, err
	}
	var out []*rules.Rule
	for gi := range groups {
		for ri := range groups[gi].Rules {
			out = append(out, &groups[gi].Rules[ri])
		}
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("%s: rule_files, contracts: no rules: name rule files or contracts", path)
	}
	return out, contracts, nil
}

// input is one generated event: its time, when it reaches the store, and
// its attributes.
type input struct {
	at, arrives time.Time
	attrs       map[string]any
}

// judged tells whether the event can change a verdict: a decision's
// events (its outputs and reads, and its watermarks) and polled freshness
// are what verdicts are derived from; queue depths or a source's polls
// without a decision cannot change one.
func (in input) judged() bool {
	id, _ := in.attrs[conventions.DecisionID].(string)
	return id != "" || in.attrs[conventions.DecisionEvent] == conventions.EventSourceFreshness
}

// events expands the test's inputs, in the order they reach the store.
func events(t Test, start time.Time) []input {
	var out []input
	for _, in := range t.InputEvents {
		for n, at := 0, in.At.D(); ; n, at = n+1, at+in.Every.D() {
			ts := start.Add(at)
			attrs := make(map[string]any, len(in.Attributes)+1)
			for k, v := range in.Attributes {
				if s, ok := v.(string); ok {
					v = strings.ReplaceAll(s, "{n}", strconv.Itoa(n))
				}
				attrs[k] = v
			}
			switch {
			case in.AsOfAt > 0:
				attrs[conventions.DataAsOf] = start.Add(in.AsOfAt.D()).Format(time.RFC3339Nano)
			case in.AsOfAgo > 0:
				attrs[conventions.DataAsOf] = ts.Add(-in.AsOfAgo.D()).Format(time.RFC3339Nano)
			}
			out = append(out, input{at: ts, arrives: ts.Add(in.ArrivesAfter.D()), attrs: attrs})
			if in.Every <= 0 || at+in.Every.D() > in.Until.D() {
				break
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].arrives.Before(out[j].arrives) })
	return out
}

func runTest(ctx context.Context, env Env, ruleset []*rules.Rule, contracts map[string]*contract.Contract, interval time.Duration, t Test) ([]string, error) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	db := "dt_ruletest_" + hex.EncodeToString(b[:])
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{env.Addr}, Auth: clickhouse.Auth{Username: env.Username, Password: env.Password}})
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" SYNC")
		_ = conn.Close()
	}()
	s := store.New(conn, db, store.Layout{}).AtRest()
	if _, _, err := s.Migrate(ctx); err != nil {
		return nil, err
	}
	if err := s.WriteContracts(ctx, contracts, env.Start); err != nil {
		return nil, err
	}

	queue := events(t, env.Start)
	ruleset = asserted(ruleset, t.AlertEval)
	alerts := rules.NewEvaluator(ruleset)
	evals := append([]AlertEval(nil), t.AlertEval...)
	sort.SliceStable(evals, func(i, j int) bool { return evals[i].At < evals[j].At })
	done := make([]bool, len(evals))
	left := len(evals)
	var failures []string
	for at := time.Duration(0); left > 0; at += interval {
		now := env.Start.Add(at)
		// What has arrived by now is stored, in one request.
		n := sort.Search(len(queue), func(i int) bool { return queue[i].arrives.After(now) })
		if n > 0 {
			ld := plog.NewLogs()
			lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
			judged := false
			for _, in := range queue[:n] {
				judged = judged || in.judged()
				lr := lrs.AppendEmpty()
				lr.SetTimestamp(pcommon.NewTimestampFromTime(in.at))
				if err := lr.Attributes().FromRaw(in.attrs); err != nil {
					return nil, fmt.Errorf("input_events: attributes: %w", err)
				}
			}
			if err := s.InsertEvents(ctx, store.LogEvents(ld, true)); err != nil {
				return nil, fmt.Errorf("storing the events arrived by %s: %w", at, err)
			}
			queue = queue[n:]
			// Verdicts depend on what is stored, not on the clock: they
			// change only when events they are derived from arrive.
			if judged {
				if _, err := s.RefreshVerdicts(ctx); err != nil {
					return nil, err
				}
			}
		}
		results, err := evalAll(ctx, ruleset, conn, db, now)
		if err != nil {
			return nil, err
		}
		// Workflow silence first: while it fires, the alerts it holds back
		// are held back from the same round.
		for _, first := range []bool{true, false} {
			for i, res := range results {
				if res.HasData && (ruleset[i].Kind == rules.KindWorkflowSilence) == first {
					alerts.Apply(ruleset[i], now, res.Samples)
				}
			}
		}
		for i, e := range evals {
			if done[i] || e.At.D() > at {
				continue
			}
			when := e.At.D() // a single check reports the time asked for
			if e.Until != 0 {
				when = at
			}
			fails, err := check(e, when, now, ruleset, alerts, func(r *rules.Rule, labels map[string]string) ([]string, error) {
				return r.Examples(ctx, conn, db, now, labels, exampleDecisions)
			})
			if err != nil {
				return nil, err
			}
			failures = append(failures, fails...)
			if e.Until == 0 || at+interval > e.Until.D() {
				done[i] = true
				left--
			}
		}
	}
	return failures, nil
}

// asserted are the rules a test's checks can see: those it names, and the
// workflow-silence rules that hold alerts back. A rule's alerts depend on
// its own queries and on those alone, so leaving the others out changes
// no check; it spares their queries at every step (a contract brings
// some thirty rules; a test names one to three).
func asserted(ruleset []*rules.Rule, evals []AlertEval) []*rules.Rule {
	named := map[string]bool{}
	for _, e := range evals {
		named[e.AlertName] = true
	}
	var out []*rules.Rule
	for _, r := range ruleset {
		if named[r.Alert] || r.Kind == rules.KindWorkflowSilence {
			out = append(out, r)
		}
	}
	return out
}

// evalConcurrency is how many rules are evaluated at once: each is a
// small query or two whose time is mostly round trips, so a few in flight
// shorten a step without loading ClickHouse much more.
const evalConcurrency = 4

// queryTimeout bounds each query of a step, as the receiver's
// query_timeout does.
const queryTimeout = time.Minute

// evalAll evaluates every rule at now as the receiver's groups do
// (rules.EvalAll: rules that read the same rows in one query), or fails
// with the first rule's error.
func evalAll(ctx context.Context, ruleset []*rules.Rule, conn driver.Conn, db string, now time.Time) ([]rules.Result, error) {
	results := rules.EvalAll(ctx, conn, db, now, ruleset, evalConcurrency, queryTimeout)
	for _, res := range results {
		if res.Err != nil {
			return nil, res.Err
		}
	}
	return results, nil
}

type got struct {
	Labels      map[string]string
	Annotations map[string]string
}

// check compares the alerts firing with the expected ones at the
// evaluation at; examples looks up a firing alert's example decisions for
// its annotations.
func check(e AlertEval, at time.Duration, now time.Time, ruleset []*rules.Rule, alerts *rules.Evaluator,
	examples func(*rules.Rule, map[string]string) ([]string, error)) ([]string, error) {
	var firing []got
	for _, r := range ruleset {
		if r.Alert != e.AlertName {
			continue
		}
		for _, a := range alerts.Machine(r).Active() {
			if a.State != alerting.StateFiring {
				continue
			}
			labels := map[string]string{}
			for k, v := range a.Labels {
				if k != "alertname" {
					labels[k] = v
				}
			}
			ex, err := examples(r, a.Labels)
			if err != nil {
				return nil, err
			}
			firing = append(firing, got{labels, r.Annotate(rules.TemplateData{Labels: a.Labels, Value: a.Value, Now: now, ExampleDecisions: ex})})
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
			keys := make([]string, 0, len(want.Annotations))
			for k := range want.Annotations {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if v := want.Annotations[k]; g.Annotations[k] != v {
					fails = append(fails, fmt.Sprintf("at %s: %s %v: annotation %s is %q, want %q", at, e.AlertName, want.Labels, k, g.Annotations[k], v))
				}
			}
			break
		}
		if !found {
			fails = append(fails, fmt.Sprintf("at %s: %s %v expected firing, is not", at, e.AlertName, want.Labels))
		}
	}
	for i, g := range firing {
		if !matched[i] {
			fails = append(fails, fmt.Sprintf("at %s: %s %v firing, not expected", at, e.AlertName, g.Labels))
		}
	}
	return fails, nil
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
