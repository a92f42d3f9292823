// Package contract holds a workflow's dependency contract: what a safe AI
// output of that workflow needs (its context sources and how fresh they must
// be, its confidence floor, its queues, the override rate people accept) and
// who is paged when it is not met. The decision processor judges every
// decision against it; alert rules derive their defaults from it.
//
// Contracts are YAML, one workflow per file. Loading is strict: an unknown
// field, a missing budget or an unknown behaviour is an error that names the
// file, the workflow and the field, so a typo cannot silently disable a
// check.
package contract

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/strictyaml"
)

// Contract is one workflow's dependency contract.
type Contract struct {
	Workflow string `yaml:"workflow"`
	// Owner is the team that owns the workflow; Paging carries the labels
	// alerts about it are routed by (team, severity, ...).
	Owner  string            `yaml:"owner"`
	Paging map[string]string `yaml:"paging"`

	Sources struct {
		Required []Source `yaml:"required"`
		Optional []Source `yaml:"optional"`
	} `yaml:"sources"`

	// ConfidenceFloor: outputs below it are low-confidence; outputs at or
	// above it on stale or missing required context are unsupported
	// certainty.
	ConfidenceFloor float64 `yaml:"confidence_floor"`
	// OnLowConfidence is the behaviour for an output under the floor.
	OnLowConfidence string `yaml:"on_low_confidence"`

	Queues []Queue `yaml:"queues"`

	OverrideRate *OverrideRate `yaml:"override_rate"`

	// MaxContextLag is how far (in event time) a required source's context
	// reads may trail the workflow's decisions before a decision whose read
	// has not arrived counts as missing rather than pending.
	MaxContextLag Duration `yaml:"max_context_lag"`

	// Traffic says when the workflow making no decisions at all is an
	// alert (DecisionWorkflowSilent): one alert for the workflow, in place
	// of one per source and layer.
	Traffic Traffic `yaml:"traffic"`
	// LayerLag is, per layer other than model, how far in event time its
	// signals may trail the workflow's latest decision before the layer
	// counts as silent (business outcomes often arrive hours later).
	LayerLag map[string]Duration `yaml:"layer_lag"`

	// The sections that answer the rest of the essay's nine questions
	// (see Questions). Each is optional; omitempty keeps the content hash
	// of a contract without them what it was.
	Data       *Data       `yaml:"data" json:",omitempty"`
	Model      *Model      `yaml:"model" json:",omitempty"`
	Identity   *Identity   `yaml:"identity" json:",omitempty"`
	Escalation *Escalation `yaml:"escalation" json:",omitempty"`
	Human      *Human      `yaml:"human" json:",omitempty"`
	Outcomes   *Outcomes   `yaml:"outcomes" json:",omitempty"`
	Cleanup    *Cleanup    `yaml:"cleanup" json:",omitempty"`
	SLOs       []SLO       `yaml:"slos" json:",omitempty"`
	Governance *Governance `yaml:"governance" json:",omitempty"`

	// File is where the contract was loaded from, for messages; it is not
	// part of the contract's content (or its hash).
	File string `yaml:"-" json:"-"`
}

// Source is a context source the workflow reads.
type Source struct {
	Name  string `yaml:"name"`
	Owner string `yaml:"owner"`
	// MaxAge is the freshness budget: context older than this at decision
	// time is stale.
	MaxAge    Duration `yaml:"max_age"`
	OnStale   string   `yaml:"on_stale"`
	OnMissing string   `yaml:"on_missing"`
}

// Data is how partially the workflow's sources may fail: the shares of
// each source's reads that come back incomplete (data.complete=false) or
// not at all (data.available=false, from reads and polls).
type Data struct {
	MaxIncomplete  float64  `yaml:"max_incomplete"`
	MaxUnavailable float64  `yaml:"max_unavailable"`
	Window         Duration `yaml:"window"`
	MinReads       int      `yaml:"min_reads"`
}

// Model bounds the model's outputs per model version: the share flagged
// unsafe, and the 95th percentiles of latency and of tokens per output.
type Model struct {
	MaxUnsafe       float64  `yaml:"max_unsafe"`
	MaxLatency      Duration `yaml:"max_latency"`
	MaxInputTokens  int64    `yaml:"max_input_tokens"`
	MaxOutputTokens int64    `yaml:"max_output_tokens"`
	Window          Duration `yaml:"window"`
	MinOutputs      int      `yaml:"min_outputs"`
}

// Identity lists the source systems whose entity IDs must resolve to the
// canonical ones (the decision processor's alias maps), and the share of
// context reads that may fail to.
type Identity struct {
	Systems       []string `yaml:"systems"`
	MaxUnresolved float64  `yaml:"max_unresolved"`
	Window        Duration `yaml:"window"`
	MinReads      int      `yaml:"min_reads"`
}

// Escalation says who receives the decisions the contract escalates, what
// they may do, and how soon they act.
type Escalation struct {
	To        string   `yaml:"to"`
	Authority []string `yaml:"authority"`
	Within    Duration `yaml:"within"`
}

// Human is how far reviewers may stop trusting the recommendations: the
// shares of decisions acted on whose latest action ignores or escalates
// them, per model version.
type Human struct {
	MaxIgnored   float64 `yaml:"max_ignored"`
	MaxEscalated float64 `yaml:"max_escalated"`
	// MaxTimeToAction bounds the 95th percentile of the time from a
	// recommendation to its first human action.
	MaxTimeToAction Duration `yaml:"max_time_to_action"`
	Window          Duration `yaml:"window"`
	MinActions      int      `yaml:"min_actions"`
}

// Outcomes are the business outcomes that prove a recommendation useful
// (Good) or not (Bad), and the share of bad ones accepted.
type Outcomes struct {
	Good   []string `yaml:"good"`
	Bad    []string `yaml:"bad"`
	MaxBad float64  `yaml:"max_bad"`
	// MaxLatency bounds the 95th percentile of decision latency: from
	// the recommendation to its first outcome.
	MaxLatency Duration `yaml:"max_decision_latency"`
	// MaxCycleTime and MaxCost bound the 95th percentiles of the
	// outcomes' business.cycle_time_s and business.cost.
	MaxCycleTime Duration `yaml:"max_cycle_time"`
	MaxCost      float64  `yaml:"max_cost"`
	Window       Duration `yaml:"window"`
	MinOutcomes  int      `yaml:"min_outcomes"`
}

// Cleanup is the hidden work a recommendation may cause: the shares of
// decisions that needed rework or raised an exception.
type Cleanup struct {
	MaxRework     float64  `yaml:"max_rework"`
	MaxExceptions float64  `yaml:"max_exceptions"`
	Window        Duration `yaml:"window"`
	MinDecisions  int      `yaml:"min_decisions"`
}

// SLO is a decision objective with an error budget, alerted on by
// multiwindow burn rates.
type SLO struct {
	Name      string  `yaml:"name"`
	SLI       string  `yaml:"sli"`
	Objective float64 `yaml:"objective"`
}

// The SLIs an SLO may hold decisions to.
const (
	SLISafeOutputs = "safe_outputs"             // model outputs not flagged model.unsafe
	SLIAccepted    = "accepted_recommendations" // decisions acted on whose latest action is neither overridden nor ignored
	SLIGoodOutcome = "good_outcomes"            // decisions whose latest outcome is not one of outcomes.bad
	// SLIFreshContext: judged decisions whose required context was fresh
	// (their verdict; pending ones are not counted yet).
	SLIFreshContext = "fresh_context"
)

// SLIs lists the SLIs, for messages.
var SLIs = []string{SLISafeOutputs, SLIAccepted, SLIGoodOutcome, SLIFreshContext}

// Governance says who watches the workflow after launch, and how often
// they review it.
type Governance struct {
	Owner  string `yaml:"owner"`
	Review string `yaml:"review"`
}

// Queue is a work queue of the workflow with its limits.
type Queue struct {
	Name     string `yaml:"name"`
	MaxDepth int64  `yaml:"max_depth"`
	// MaxGrowth over GrowthWindow: more growth than this is a queue filling.
	MaxGrowth    int64    `yaml:"max_growth"`
	GrowthWindow Duration `yaml:"growth_window"`
}

// OverrideRate is the share of human actions that override the model which
// the workflow's owners accept.
type OverrideRate struct {
	Max        float64  `yaml:"max"`
	Window     Duration `yaml:"window"`
	MinActions int      `yaml:"min_actions"`
}

// Traffic is the contract's expectation of decisions: with Off, the
// workflow may stop deciding for any time (a batch workflow); otherwise a
// pause longer than MaxSilence is one alert of Severity.
type Traffic struct {
	Off        bool     `yaml:"-"`
	MaxSilence Duration `yaml:"max_silence"`
	Severity   string   `yaml:"severity"`
}

// UnmarshalYAML accepts "off" or a mapping of max_silence and severity.
func (t *Traffic) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Value != "off" {
			return fmt.Errorf("line %d: want off or a mapping of max_silence and severity, got %q", n.Line, n.Value)
		}
		*t = Traffic{Off: true}
		return nil
	}
	type plain Traffic
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*t = Traffic(p)
	return nil
}

// MarshalJSON keeps Off in the contract's content (its hash).
func (t Traffic) MarshalJSON() ([]byte, error) {
	if t.Off {
		return []byte(`"off"`), nil
	}
	return []byte(fmt.Sprintf(`{"max_silence":%d,"severity":%q}`, time.Duration(t.MaxSilence), t.Severity)), nil
}

// Duration reads Go duration strings ("90s", "15m", "2h").
type Duration time.Duration

// UnmarshalYAML accepts a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as 90s or 15m", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (such as 90s or 15m)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// behaviours a contract may prescribe, mildest first: when several apply to
// one decision the most severe wins.
var behaviours = []string{
	conventions.BehaviourProceed,
	conventions.BehaviourWarn,
	conventions.BehaviourProceedWithLimits,
	conventions.BehaviourDegrade,
	conventions.BehaviourAbstain,
	conventions.BehaviourEscalate,
}

// Behaviours lists the behaviours, mildest first.
func Behaviours() []string { return append([]string(nil), behaviours...) }

// Severity orders behaviours; unknown ones rank lowest.
func Severity(b string) int {
	for i, x := range behaviours {
		if x == b {
			return i
		}
	}
	return -1
}

// MostSevere returns the more severe of two behaviours.
func MostSevere(a, b string) string {
	if Severity(b) > Severity(a) {
		return b
	}
	return a
}

// Defaults for fields a contract may leave out.
const (
	DefaultOnStale         = conventions.BehaviourWarn
	DefaultOnMissing       = conventions.BehaviourWarn
	DefaultOnLowConfidence = conventions.BehaviourEscalate
	DefaultMaxContextLag   = Duration(10 * time.Minute)
	// A workflow that makes no decision for 30 minutes is a ticket: at
	// night that is often a workflow scaled to zero, in the day an outage
	// upstream, and either way one alert, not one per source and layer.
	DefaultMaxSilence      = Duration(30 * time.Minute)
	DefaultTrafficSeverity = "ticket"
	// A layer whose signals trail the latest decision by 15 minutes has
	// stopped (contracts set longer lags for slow feeds).
	DefaultLayerLag = Duration(15 * time.Minute)
)

// LagLayers are the layers whose silence is judged against the workflow's
// decisions: every layer but model, whose silence is the workflow's.
var LagLayers = []string{conventions.LayerData, conventions.LayerWorkflow, conventions.LayerHuman, conventions.LayerBusiness}

// Lag returns the layer's lag: the contract's, or the default.
func (c *Contract) Lag(layer string) Duration {
	if d, ok := c.LayerLag[layer]; ok {
		return d
	}
	return DefaultLayerLag
}

// Pause is the gap in the workflow's decisions that the contract calls a
// pause: its traffic's max_silence (the gap DecisionWorkflowSilent pages
// on), none (0) for a workflow that may stop for any time (traffic: off).
func (c *Contract) Pause() Duration {
	if c.Traffic.Off {
		return 0
	}
	return c.Traffic.MaxSilence
}

// Expand resolves file patterns (contracts, rule files) as a component's
// field names them, relative ones from dir ("" for the working directory);
// a pattern that matches nothing is an error, as a misspelt path would
// otherwise watch nothing without a word. Each problem names the pattern
// as written.
func Expand(dir, field string, patterns []string) ([]string, []error) {
	var files []string
	var errs []error
	for i, written := range patterns {
		p := written
		if dir != "" && !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		m, err := filepath.Glob(p)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s[%d]: %q: %w", field, i, written, err))
		case len(m) == 0:
			errs = append(errs, fmt.Errorf("%s[%d]: %q matches no file", field, i, written))
		}
		files = append(files, m...)
	}
	return files, errs
}

// Workflows reads only the workflow each contract file names: for a
// component that needs to know which workflows have a contract but does
// not judge the contracts (the alertrules receiver validates them, and
// reports each problem once).
func Workflows(files []string) (map[string]bool, error) {
	out := make(map[string]bool, len(files))
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("contract %s: %w", f, err))
			continue
		}
		var c struct {
			Workflow string `yaml:"workflow"`
		}
		if err := yaml.Unmarshal(b, &c); err != nil {
			errs = append(errs, fmt.Errorf("contract %s: %w", f, err))
			continue
		}
		if c.Workflow == "" {
			errs = append(errs, fmt.Errorf("contract %s: workflow: required", f))
			continue
		}
		out[c.Workflow] = true
	}
	return out, errors.Join(errs...)
}

// Load reads and validates contract files. Every problem in every file is
// reported, each naming the file, the workflow and the field; two files for
// one workflow are an error.
func Load(files []string) (map[string]*Contract, error) {
	out := make(map[string]*Contract, len(files))
	var errs []error
	for _, f := range files {
		c, err := LoadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if prev, ok := out[c.Workflow]; ok {
			errs = append(errs, fmt.Errorf("%s: workflow %s: already defined in %s", f, c.Workflow, prev.File))
			continue
		}
		out[c.Workflow] = c
	}
	return out, errors.Join(errs...)
}

// LoadFile reads and validates one contract file.
func LoadFile(path string) (*Contract, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("contract %s: %w", path, err)
	}
	return Parse(path, b)
}

// Parse decodes and validates one contract; name is used in messages.
func Parse(name string, b []byte) (*Contract, error) {
	var c Contract
	if err := strictyaml.Decode(name, b, &c); err != nil {
		return nil, err
	}
	c.File = name
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Contract) applyDefaults() {
	if c.OnLowConfidence == "" {
		c.OnLowConfidence = DefaultOnLowConfidence
	}
	if c.MaxContextLag == 0 {
		c.MaxContextLag = DefaultMaxContextLag
	}
	if !c.Traffic.Off {
		if c.Traffic.MaxSilence == 0 {
			c.Traffic.MaxSilence = DefaultMaxSilence
		}
		if c.Traffic.Severity == "" {
			c.Traffic.Severity = DefaultTrafficSeverity
		}
	}
	for _, list := range [][]Source{c.Sources.Required, c.Sources.Optional} {
		for i := range list {
			if list[i].OnStale == "" {
				list[i].OnStale = DefaultOnStale
			}
			if list[i].OnMissing == "" {
				list[i].OnMissing = DefaultOnMissing
			}
		}
	}
}

// Validate reports every problem of the contract, each prefixed with the
// file and the workflow.
func (c *Contract) Validate() error {
	wf := c.Workflow
	if wf == "" {
		wf = "(unnamed)"
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: workflow %s: %s: %s", c.File, wf, field, fmt.Sprintf(format, args...)))
	}
	if c.Workflow == "" {
		bad("workflow", "required")
	}
	if c.ConfidenceFloor < 0 || c.ConfidenceFloor > 1 {
		bad("confidence_floor", "%v is outside [0, 1]", c.ConfidenceFloor)
	}
	checkBehaviour := func(field, b string) {
		if Severity(b) < 0 {
			bad(field, "%q is not a behaviour (want one of %s)", b, strings.Join(behaviours, ", "))
		}
	}
	checkBehaviour("on_low_confidence", c.OnLowConfidence)
	if c.MaxContextLag < 0 {
		bad("max_context_lag", "must not be negative")
	}
	if !c.Traffic.Off && c.Traffic.MaxSilence < 0 {
		bad("traffic.max_silence", "must not be negative")
	}
	for layer, d := range c.LayerLag {
		switch {
		case !slices.Contains(LagLayers, layer):
			bad("layer_lag."+layer, "not a layer whose lag is set (want one of %s; the model layer's silence is traffic.max_silence)", strings.Join(LagLayers, ", "))
		case d <= 0:
			bad("layer_lag."+layer, "must be positive")
		}
	}
	seen := map[string]string{}
	for kind, list := range map[string][]Source{"required": c.Sources.Required, "optional": c.Sources.Optional} {
		for i, s := range list {
			field := fmt.Sprintf("sources.%s[%d]", kind, i)
			if s.Name == "" {
				bad(field+".name", "required")
			} else if prev, ok := seen[s.Name]; ok {
				bad(field+".name", "source %s is already listed as %s", s.Name, prev)
			} else {
				seen[s.Name] = field
			}
			if s.MaxAge <= 0 {
				bad(field+".max_age", "required and must be positive (a freshness budget such as 90s)")
			}
			checkBehaviour(field+".on_stale", s.OnStale)
			checkBehaviour(field+".on_missing", s.OnMissing)
		}
	}
	for i, q := range c.Queues {
		field := fmt.Sprintf("queues[%d]", i)
		if q.Name == "" {
			bad(field+".name", "required")
		}
		if q.MaxDepth < 0 {
			bad(field+".max_depth", "must not be negative")
		}
		if q.MaxGrowth < 0 {
			bad(field+".max_growth", "must not be negative")
		}
		if q.MaxGrowth > 0 && q.GrowthWindow <= 0 {
			bad(field+".growth_window", "required with max_growth")
		}
	}
	if o := c.OverrideRate; o != nil {
		if o.Max <= 0 || o.Max > 1 {
			bad("override_rate.max", "%v is outside (0, 1]", o.Max)
		}
		if o.Window <= 0 {
			bad("override_rate.window", "required and must be positive")
		}
		if o.MinActions < 0 {
			bad("override_rate.min_actions", "must not be negative")
		}
	}
	c.validateSections(bad)
	// Sort for stable messages: map iteration above visits kinds in random order.
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// Required reports whether the contract lists source as required.
func (c *Contract) Required(source string) (Source, bool) {
	for _, s := range c.Sources.Required {
		if s.Name == source {
			return s, true
		}
	}
	return Source{}, false
}

// Optional reports whether the contract lists source as optional.
func (c *Contract) Optional(source string) (Source, bool) {
	for _, s := range c.Sources.Optional {
		if s.Name == source {
			return s, true
		}
	}
	return Source{}, false
}

// validateSections checks the sections that answer the rest of the nine
// questions.
func (c *Contract) validateSections(bad func(field, format string, args ...any)) {
	rate := func(field string, v float64, required bool) {
		if (required || v != 0) && (v <= 0 || v > 1) {
			bad(field, "%v is outside (0, 1]", v)
		}
	}
	window := func(field string, d Duration) {
		if d <= 0 {
			bad(field, "required and must be positive")
		}
	}
	positive := func(field string, set bool) {
		if set {
			bad(field, "must be positive")
		}
	}
	if d := c.Data; d != nil {
		if d.MaxIncomplete == 0 && d.MaxUnavailable == 0 {
			bad("data", "set max_incomplete, max_unavailable or both")
		}
		rate("data.max_incomplete", d.MaxIncomplete, false)
		rate("data.max_unavailable", d.MaxUnavailable, false)
		window("data.window", d.Window)
	}
	if m := c.Model; m != nil {
		if m.MaxUnsafe == 0 && m.MaxLatency == 0 && m.MaxInputTokens == 0 && m.MaxOutputTokens == 0 {
			bad("model", "set max_unsafe, max_latency, max_input_tokens, max_output_tokens or several")
		}
		rate("model.max_unsafe", m.MaxUnsafe, false)
		positive("model.max_latency", m.MaxLatency < 0)
		positive("model.max_input_tokens", m.MaxInputTokens < 0)
		positive("model.max_output_tokens", m.MaxOutputTokens < 0)
		window("model.window", m.Window)
	}
	if id := c.Identity; id != nil {
		if len(id.Systems) == 0 {
			bad("identity.systems", "required: the source systems whose entity IDs must resolve")
		}
		rate("identity.max_unresolved", id.MaxUnresolved, true)
		window("identity.window", id.Window)
	}
	if e := c.Escalation; e != nil {
		if e.To == "" {
			bad("escalation.to", "required: who receives escalated decisions")
		}
		if len(e.Authority) == 0 {
			bad("escalation.authority", "required: what they may do (e.g. override, pause_workflow)")
		}
	}
	if h := c.Human; h != nil {
		if h.MaxIgnored == 0 && h.MaxEscalated == 0 && h.MaxTimeToAction == 0 {
			bad("human", "set max_ignored, max_escalated, max_time_to_action or several")
		}
		rate("human.max_ignored", h.MaxIgnored, false)
		rate("human.max_escalated", h.MaxEscalated, false)
		positive("human.max_time_to_action", h.MaxTimeToAction < 0)
		window("human.window", h.Window)
	}
	if o := c.Outcomes; o != nil {
		if len(o.Bad) == 0 {
			bad("outcomes.bad", "required: the outcomes that show a recommendation was not useful")
		}
		for _, b := range o.Bad {
			if slices.Contains(o.Good, b) {
				bad("outcomes.bad", "%q is listed as good too", b)
			}
		}
		rate("outcomes.max_bad", o.MaxBad, true)
		positive("outcomes.max_decision_latency", o.MaxLatency < 0)
		positive("outcomes.max_cycle_time", o.MaxCycleTime < 0)
		positive("outcomes.max_cost", o.MaxCost < 0)
		window("outcomes.window", o.Window)
	}
	if cl := c.Cleanup; cl != nil {
		if cl.MaxRework == 0 && cl.MaxExceptions == 0 {
			bad("cleanup", "set max_rework, max_exceptions or both")
		}
		rate("cleanup.max_rework", cl.MaxRework, false)
		rate("cleanup.max_exceptions", cl.MaxExceptions, false)
		window("cleanup.window", cl.Window)
	}
	names := map[string]bool{}
	for i, s := range c.SLOs {
		field := fmt.Sprintf("slos[%d]", i)
		switch {
		case s.Name == "":
			bad(field+".name", "required")
		case names[s.Name]:
			bad(field+".name", "%q is listed twice", s.Name)
		}
		names[s.Name] = true
		if !slices.Contains(SLIs, s.SLI) {
			bad(field+".sli", "%q is not one of %s", s.SLI, strings.Join(SLIs, ", "))
		}
		if s.SLI == SLIGoodOutcome && c.Outcomes == nil {
			bad(field+".sli", "good_outcomes needs the outcomes section (which outcomes are bad)")
		}
		if s.Objective <= 0 || s.Objective >= 1 {
			bad(field+".objective", "%v is outside (0, 1): the share of good decisions, e.g. 0.99", s.Objective)
		}
	}
	if g := c.Governance; g != nil && g.Owner == "" {
		bad("governance.owner", "required: who reviews the workflow after launch")
	}
}
