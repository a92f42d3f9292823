// Package rules holds decisiontrace's alerting rules: YAML groups in the
// spirit of Prometheus rule files, built-in rule kinds that need no SQL from
// the user, and the parameterized ClickHouse query each kind runs over the
// decision store. Label values from event data only ever travel as query
// parameters or result columns, never as SQL text.
package rules

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/decisiontrace/decisiontrace/internal/contract"
	"github.com/decisiontrace/decisiontrace/internal/strictyaml"
)

// Kind is a built-in rule kind.
type Kind string

// The built-in kinds.
const (
	KindSourceStaleness      Kind = "source_staleness"
	KindQueueDepth           Kind = "queue_depth"
	KindQueueGrowth          Kind = "queue_growth"
	KindOverrideRate         Kind = "override_rate"
	KindUnsupportedCertainty Kind = "unsupported_certainty_rate"
	KindMissingContext       Kind = "missing_context_rate"
	KindLowConfidence        Kind = "low_confidence_share"
	KindConfidenceDrift      Kind = "confidence_drift"
	KindLayerSilence         Kind = "layer_silence"
	KindWorkflowSilence      Kind = "workflow_silence"
	KindUnresolvedEntity     Kind = "unresolved_entity_rate"
	KindEvaluationScore      Kind = "evaluation_score"
	KindRatio                Kind = "ratio"
	KindSLOBurnRate          Kind = "slo_burn_rate"
	KindQuantile             Kind = "quantile"
	KindInterval             Kind = "interval"
	KindCustomSQL            Kind = "custom_sql"
)

// HeldBackBySilence reports whether the kind's alerts for a workflow are
// held back while that workflow makes no decisions at all: its sources
// and layers going quiet is the same fact, already one alert.
func (k Kind) HeldBackBySilence() bool {
	spec, ok := registry[k]
	return ok && spec.heldBackBySilence
}

// File is one rule file.
type File struct {
	Groups []Group `yaml:"groups"`
	Path   string  `yaml:"-"`
}

// Group is rules evaluated together on one interval.
type Group struct {
	Name     string            `yaml:"name"`
	Interval contract.Duration `yaml:"interval"`
	Rules    []Rule            `yaml:"rules"`
}

// Rule is one alerting rule.
type Rule struct {
	Alert         string            `yaml:"alert"`
	Kind          Kind              `yaml:"kind"`
	For           contract.Duration `yaml:"for"`
	KeepFiringFor contract.Duration `yaml:"keep_firing_for"`
	Labels        map[string]string `yaml:"labels"`
	Annotations   map[string]string `yaml:"annotations"`

	// Filters.
	Workflow string `yaml:"workflow"`
	Source   string `yaml:"source"`
	Queue    string `yaml:"queue"`

	// Which workflows a rule without a workflow filter alerts for: those
	// with a contract and those listed here, unless AnyWorkflow. A workflow
	// name is whatever a producer sends, so without this an invented one
	// (a typo, a test run, a hostile client) would page a team.
	Workflows   []string `yaml:"workflows"`
	AnyWorkflow bool     `yaml:"any_workflow"`
	known       map[string]bool

	// Thresholds and windows; which apply depends on the kind.
	MaxAge    contract.Duration            `yaml:"max_age"`
	Budgets   map[string]contract.Duration `yaml:"-"` // source → budget, from contracts
	MaxDepth  int64                        `yaml:"max_depth"`
	MaxGrowth int64                        `yaml:"max_growth"`
	Window    contract.Duration            `yaml:"window"`
	Baseline  contract.Duration            `yaml:"baseline"`
	MaxRate   float64                      `yaml:"max_rate"`
	MinCount  int                          `yaml:"min_count"`
	ByModel   bool                         `yaml:"by_model_version"`
	MaxDrift  float64                      `yaml:"max_drift"`
	SilentFor contract.Duration            `yaml:"silent_for"`
	Lags      map[string]contract.Duration `yaml:"-"` // layer → silent_for, from contracts
	// PausedAfter is the gap in a workflow's decisions that the rule
	// takes for a pause: a layer's silence counts from the decisions
	// after it, and a window that holds the resume has no data because
	// of the pause, not of the rule (Idle). Unset, it is a gap longer
	// than the workflow's contract's pause (pauses, by workflow:
	// contract.Pause), else contract.DefaultMaxSilence; for
	// layer_silence, a gap longer than the layer's silent_for too.
	PausedAfter contract.Duration `yaml:"paused_after"`
	pauses      map[string]contract.Duration

	SQL string `yaml:"sql"`
	// Evaluation names the evaluator (gen_ai.evaluation.name) an
	// evaluation_score rule reads, all of them when empty; MinScore is the
	// score a decision must reach.
	Evaluation string  `yaml:"evaluation"`
	MinScore   float64 `yaml:"min_score"`
	// A ratio rule counts (Count: decisions, each by its latest signal
	// that Denominator selects, or events, each stored event once) and
	// pages on the share that Numerator selects too, per workflow and the
	// conventions in By. Filters name conventions (business.outcome,
	// human.action, ...) with a value or a list of values.
	Count       string         `yaml:"count"`
	Denominator map[string]any `yaml:"denominator"`
	Numerator   map[string]any `yaml:"numerator"`
	By          []string       `yaml:"by"`
	// An slo_burn_rate rule holds a ratio's numerator (the bad share) to
	// Objective (the good share, 0.99), and fires while the error budget
	// burns at BurnRate times the sustainable pace over both LongWindow
	// and ShortWindow (the SRE workbook's multiwindow alert: 1h and 5m at
	// 14.4 pages, 6h and 30m at 6 opens a ticket).
	// EntitySystems limits an unresolved_entity_rate rule to these source
	// systems (all when empty).
	EntitySystems []string `yaml:"entity_systems"`
	// summary is a contract rule's own default summary, where its kind's
	// (a ratio's) would say less.
	summary string

	// A quantile rule pages when the Quantile (0.95) of a convention's
	// numeric Value (model.latency_ms, business.cycle_time_s, ...) over
	// the signals Denominator selects, each stored event once, is over Max.
	Value    string  `yaml:"value"`
	Quantile float64 `yaml:"quantile"`
	Max      float64 `yaml:"max"`
	// An interval rule pages when the Quantile of the seconds from each
	// decision's first From signal to its first To signal is over Max.
	From map[string]any `yaml:"from"`
	To   map[string]any `yaml:"to"`

	Objective   float64           `yaml:"objective"`
	BurnRate    float64           `yaml:"burn_rate"`
	LongWindow  contract.Duration `yaml:"long_window"`
	ShortWindow contract.Duration `yaml:"short_window"`

	annotationTemplates map[string]*template.Template
}

// funcs are available to annotation templates.
var funcs = template.FuncMap{
	"mul100": func(v float64) float64 { return v * 100 },
	"join":   strings.Join,
	// since renders the instant seconds before t (the evaluation time):
	// {{ since .Now .Value }} for a value that is an age.
	"since": func(t time.Time, seconds float64) string {
		return t.Add(-time.Duration(seconds * float64(time.Second))).UTC().Format(time.RFC3339)
	},
	"humanizeDuration": humanizeDuration,
}

// humanizeDuration renders seconds as Prometheus' template function of the
// name does: 1d 2h 3m 4s, 20m 0s, 59.45s.
func humanizeDuration(v float64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	if v < 60 {
		return fmt.Sprintf("%s%.4gs", sign, v)
	}
	d := int64(v)
	sec, mins, hours, days := d%60, d/60%60, d/3600%24, d/86400
	switch {
	case days > 0:
		return fmt.Sprintf("%s%dd %dh %dm %ds", sign, days, hours, mins, sec)
	case hours > 0:
		return fmt.Sprintf("%s%dh %dm %ds", sign, hours, mins, sec)
	}
	return fmt.Sprintf("%s%dm %ds", sign, mins, sec)
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// LoadFiles reads and validates rule files; every problem names the file,
// the group, the rule and the field.
func LoadFiles(paths []string) ([]File, error) {
	var out []File
	var errs []error
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("rules %s: %w", p, err))
			continue
		}
		f, err := Parse(p, b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, *f)
	}
	return out, errors.Join(errs...)
}

// Parse decodes and validates one rule file.
func Parse(name string, b []byte) (*File, error) {
	var f File
	if err := strictyaml.Decode(name, b, &f); err != nil {
		return nil, err
	}
	f.Path = name
	if err := f.validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

func (f *File) validate() error {
	var errs []error
	if len(f.Groups) == 0 {
		errs = append(errs, fmt.Errorf("%s: groups: at least one group is required", f.Path))
	}
	groups := map[string]bool{}
	for gi := range f.Groups {
		g := &f.Groups[gi]
		gname := g.Name
		if gname == "" {
			gname = fmt.Sprintf("#%d", gi)
			errs = append(errs, fmt.Errorf("%s: group %s: name: required", f.Path, gname))
		} else if groups[gname] {
			errs = append(errs, fmt.Errorf("%s: group %s: name: defined twice", f.Path, gname))
		}
		groups[gname] = true
		if g.Interval <= 0 {
			errs = append(errs, fmt.Errorf("%s: group %s: interval: required and must be positive", f.Path, gname))
		}
		for ri := range g.Rules {
			r := &g.Rules[ri]
			rname := r.Alert
			if rname == "" {
				rname = fmt.Sprintf("#%d", ri)
			}
			for _, e := range r.validate() {
				errs = append(errs, fmt.Errorf("%s: group %s: rule %s: %w", f.Path, gname, rname, e))
			}
		}
	}
	return errors.Join(errs...)
}

func (r *Rule) validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if !labelName.MatchString(r.Alert) {
		bad("alert", "%q is not a valid alert name", r.Alert)
	}
	spec, known := registry[r.Kind]
	if !known {
		bad("kind", "%q is not one of %s", r.Kind, strings.Join(kindNames(), ", "))
	}
	if r.For < 0 || r.KeepFiringFor < 0 {
		bad("for", "for and keep_firing_for must not be negative")
	}
	if r.PausedAfter < 0 {
		bad("paused_after", "must not be negative")
	}
	for k := range r.Labels {
		if !labelName.MatchString(k) {
			bad("labels", "%q is not a valid label name", k)
		}
	}
	if r.Workflow != "" && (len(r.Workflows) > 0 || r.AnyWorkflow) {
		bad("workflows", "workflows and any_workflow are for rules without a workflow filter; this one sets workflow %q", r.Workflow)
	}
	if len(r.Workflows) > 0 && r.AnyWorkflow {
		bad("any_workflow", "set either workflows or any_workflow")
	}
	r.known = map[string]bool{}
	for i, wf := range r.Workflows {
		if wf == "" {
			bad(fmt.Sprintf("workflows[%d]", i), "empty")
		}
		r.known[wf] = true
	}
	r.annotationTemplates = map[string]*template.Template{}
	for k, v := range r.Annotations {
		t, err := template.New(k).Option("missingkey=zero").Funcs(funcs).Parse(v)
		if err != nil {
			bad("annotations."+k, "%v", err)
			continue
		}
		r.annotationTemplates[k] = t
	}
	if known {
		spec.check(r, bad)
	}
	return errs
}

// Seconds renders a duration as whole seconds for a query parameter.
func seconds(d contract.Duration) int64 { return int64(time.Duration(d) / time.Second) }

// Defaults derives the rules a workflow's contract implies, so that a
// workflow with a contract is watched without anyone writing a rule. Labels
// carry the contract's paging labels and the owner as team when no team is
// given.
func Defaults(c *contract.Contract) ([]Rule, error) {
	labels := map[string]string{"workflow": c.Workflow}
	for k, v := range c.Paging {
		labels[k] = v
	}
	if _, ok := labels["team"]; !ok && c.Owner != "" {
		labels["team"] = c.Owner
	}
	with := func(r Rule) Rule {
		r.Workflow = c.Workflow
		r.pauses = contractPauses(c)
		r.Labels = map[string]string{}
		for k, v := range labels {
			r.Labels[k] = v
		}
		return r
	}
	var out []Rule
	if len(c.Sources.Required) > 0 {
		budgets := map[string]contract.Duration{}
		for _, s := range c.Sources.Required {
			budgets[s.Name] = s.MaxAge
		}
		out = append(out, with(Rule{Alert: "DecisionSourceStale", Kind: KindSourceStaleness, Budgets: budgets,
			For: contract.Duration(time.Minute), KeepFiringFor: contract.Duration(5 * time.Minute)}))
	}
	for _, q := range c.Queues {
		// A queue that spikes and drains within minutes is the queue
		// working; a backlog that keeps growing for 5 minutes is not.
		if q.MaxDepth > 0 {
			out = append(out, with(Rule{Alert: "DecisionQueueDepth", Kind: KindQueueDepth, Queue: q.Name, MaxDepth: q.MaxDepth,
				For: contract.Duration(5 * time.Minute), KeepFiringFor: contract.Duration(5 * time.Minute)}))
		}
		if q.MaxGrowth > 0 {
			out = append(out, with(Rule{Alert: "DecisionQueueGrowth", Kind: KindQueueGrowth, Queue: q.Name, MaxGrowth: q.MaxGrowth,
				Window: q.GrowthWindow, For: contract.Duration(5 * time.Minute), KeepFiringFor: contract.Duration(5 * time.Minute)}))
		}
	}
	if o := c.OverrideRate; o != nil {
		out = append(out, with(Rule{Alert: "DecisionOverrideRate", Kind: KindOverrideRate, Window: o.Window, MaxRate: o.Max,
			MinCount: o.MinActions, ByModel: true, For: contract.Duration(5 * time.Minute)}))
	}
	out = append(out,
		with(Rule{Alert: "DecisionUnsupportedCertainty", Kind: KindUnsupportedCertainty, Window: contract.Duration(15 * time.Minute),
			MaxRate: 0.05, MinCount: 20, For: contract.Duration(2 * time.Minute)}),
		with(Rule{Alert: "DecisionMissingContext", Kind: KindMissingContext, Window: contract.Duration(15 * time.Minute),
			MaxRate: 0.05, MinCount: 20, For: contract.Duration(2 * time.Minute)}),
	)
	// A layer is silent when it trails the workflow's decisions by more
	// than its lag: a producer restarting, or the collector starting
	// before its traffic, is not a silent layer, and neither is a
	// workflow that stopped deciding (that is DecisionWorkflowSilent),
	// nor one that resumed since less than the lag ago.
	lags := map[string]contract.Duration{}
	for _, l := range contract.LagLayers {
		lags[l] = c.Lag(l)
	}
	out = append(out, with(Rule{Alert: "DecisionLayerSilent", Kind: KindLayerSilence, Lags: lags, For: contract.Duration(5 * time.Minute)}))
	if !c.Traffic.Off {
		// First in the group: the evaluator holds back the workflow's
		// silence and staleness alerts while this one fires, from the
		// same round on.
		silent := with(Rule{Alert: "DecisionWorkflowSilent", Kind: KindWorkflowSilence, SilentFor: c.Traffic.MaxSilence,
			For: contract.Duration(time.Minute)})
		silent.Labels["severity"] = c.Traffic.Severity
		out = append([]Rule{silent}, out...)
	}
	out = append(out, sectionDefaults(c, with)...)
	for i := range out {
		summary := registry[out[i].Kind].summary
		if out[i].summary != "" {
			summary = out[i].summary
		}
		out[i].Annotations = map[string]string{"summary": summary, "dashboard": "{{ .DashboardURL }}",
			"example_decisions": `{{ join .ExampleDecisions " " }}`}
	}
	var errs []error
	for i := range out {
		for _, e := range out[i].validate() {
			errs = append(errs, fmt.Errorf("%s: workflow %s: default rule %s: %w", c.File, c.Workflow, out[i].Alert, e))
		}
	}
	return out, errors.Join(errs...)
}

// Key tells rules apart: contract rules share names across workflows, so
// a rule is its alert name and labels ("Alert,k=v,..." with the labels
// sorted). The evaluator stores alert state under it, so the format is
// part of the store: changing it would orphan every firing alert's state.
func (r *Rule) Key() string {
	keys := make([]string, 0, len(r.Labels))
	for k := range r.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(r.Alert)
	for _, k := range keys {
		b.WriteString("," + k + "=" + r.Labels[k])
	}
	return b.String()
}

// Alerts reports whether the rule alerts for a workflow name found in the
// data: any, when the rule filters on one workflow (the query only finds
// that one) or says any_workflow; else only those with a contract or
// listed in the rule's workflows.
func (r *Rule) Alerts(workflow string) bool {
	return r.Workflow != "" || r.AnyWorkflow || r.known[workflow]
}

// TemplateData is what annotation templates see: {{ .Labels.workflow }},
// {{ .Value }}, {{ .Now }} (the evaluation time), {{ .ExampleDecisions }},
// {{ .DashboardURL }}.
type TemplateData struct {
	Labels           map[string]string
	Value            float64
	Now              time.Time
	ExampleDecisions []string
	DashboardURL     string
}

// Annotate renders the rule's annotations for one alert. A template that
// fails at run time (say, an index out of range) yields its error text in
// place of the annotation rather than no alert at all. An annotation that
// renders empty (no example decisions, no dashboard) is left out.
func (r *Rule) Annotate(d TemplateData) map[string]string {
	out := make(map[string]string, len(r.annotationTemplates))
	for k, t := range r.annotationTemplates {
		var b strings.Builder
		if err := t.Execute(&b, d); err != nil {
			out[k] = fmt.Sprintf("<annotation %s failed: %v>", k, err)
			continue
		}
		if b.Len() > 0 {
			out[k] = b.String()
		}
	}
	return out
}

// Load reads rule files and derives the default rules of contracts (as
// contract.Load returns them, read once by the caller, which also judges
// them): the files' groups, then one group per contract's workflow
// ("contract:<workflow>") evaluated every contractInterval. A file's rule
// without a workflow filter alerts for the contracts' workflows and those
// it lists (see Rule.Alerts). Every problem
// is reported, naming its file; a rule defined twice with the same labels
// is one.
func Load(ruleFiles []string, contracts map[string]*contract.Contract, contractInterval time.Duration) ([]Group, error) {
	files, err := LoadFiles(ruleFiles)
	errs := []error{err}
	var out []Group
	where := map[string]string{}
	add := func(g Group, at string) {
		for _, r := range g.Rules {
			key := r.Key()
			if prev, ok := where[key]; ok {
				errs = append(errs, fmt.Errorf("%s: rule %s: defined twice with the same labels (also in %s)", at, r.Alert, prev))
			}
			where[key] = at
		}
		out = append(out, g)
	}
	for _, f := range files {
		for _, g := range f.Groups {
			add(g, f.Path+": group "+g.Name)
		}
	}
	if len(contracts) > 0 {
		workflows := make([]string, 0, len(contracts))
		for wf := range contracts {
			workflows = append(workflows, wf)
		}
		sort.Strings(workflows)
		for gi := range out {
			for ri := range out[gi].Rules {
				r := &out[gi].Rules[ri]
				r.pauses = map[string]contract.Duration{}
				for _, wf := range workflows {
					r.known[wf] = true
					maps.Copy(r.pauses, contractPauses(contracts[wf]))
				}
			}
		}
		for _, wf := range workflows {
			c := contracts[wf]
			rs, err := Defaults(c)
			errs = append(errs, err)
			add(Group{Name: "contract:" + wf, Interval: contract.Duration(contractInterval), Rules: rs}, c.File)
		}
	}
	return out, errors.Join(errs...)
}
