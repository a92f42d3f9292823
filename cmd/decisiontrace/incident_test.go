package main

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
)

// request is one OTLP request of an incident, with when it reaches a
// collector relative to the incident's start (its signals carry their own
// event times).
type request struct {
	arrives time.Duration
	logs    plog.Logs
}

// incidentSource is a context source of a workflow in deploy/contracts.
type incidentSource struct {
	name     string
	required bool
	age      time.Duration // how old its data normally is when read
}

var incidentWorkflows = []struct {
	name    string
	sources []incidentSource
}{
	{"claims-triage", []incidentSource{{"policy-db", true, 20 * time.Second}, {"claims-history", true, 2 * time.Minute}, {"fraud-signals", false, time.Minute}}},
	{"loan-underwriting", []incidentSource{{"credit-bureau", true, 5 * time.Minute}, {"document-store", true, 30 * time.Second}, {"income-verification", false, 10 * time.Minute}}},
	{"support-assist", []incidentSource{{"kb", true, time.Hour}}}, // no contract
}

// incidentOptions shape an incident of the demo workflows.
type incidentOptions struct {
	start    time.Time     // event time of the first decision
	span     time.Duration // how long decisions are made
	every    time.Duration // one decision per workflow this often
	seed     uint64
	absent   float64       // share of required reads that never happen
	readLag  time.Duration // how long after their outputs context reads arrive
	staleAt  time.Duration // policy-db stops updating at start+staleAt for staleFor
	staleFor time.Duration
	batch    time.Duration // event time one request covers
}

// incident generates the requests of a realistic incident: every workflow
// decides every `every`; each decision reads its sources (a required read
// is absent with probability absent, a credit-bureau read finds the bureau
// unavailable 1% of the time), the model answers, the workflow routes, a
// reviewer acts on a third and an outcome follows for a fifth. policy-db
// stops updating for a while. Outputs and the other layers travel in one
// request per batch of event time, context reads in another that arrives
// readLag later.
func incident(o incidentOptions) ([]request, incidentTruth) {
	truth := incidentTruth{missing: map[string]bool{}, at: map[string]time.Time{}}
	rng := rand.New(rand.NewPCG(o.seed, 7))
	type pending struct {
		arrives time.Duration
		add     func(plog.LogRecordSlice)
	}
	var sigs []pending
	emit := func(arrives time.Duration, at time.Time, attrs map[string]any) {
		sigs = append(sigs, pending{arrives, func(lrs plog.LogRecordSlice) {
			lr := lrs.AppendEmpty()
			lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
			if err := lr.Attributes().FromRaw(attrs); err != nil {
				panic(err)
			}
		}})
	}
	batchOf := func(d time.Duration) time.Duration { return (d/o.batch + 1) * o.batch }
	for off := time.Duration(0); off < o.span; off += o.every {
		for wi, wf := range incidentWorkflows {
			id := fmt.Sprintf("%s-%05d", wf.name[:4], int(off/o.every))
			at := o.start.Add(off).Add(time.Duration(wi) * 100 * time.Millisecond)
			base := map[string]any{c.DecisionID: id, c.DecisionWorkflow: wf.name}
			with := func(extra map[string]any) map[string]any {
				m := map[string]any{}
				for k, v := range base {
					m[k] = v
				}
				for k, v := range extra {
					m[k] = v
				}
				return m
			}
			if wf.name != "support-assist" {
				truth.at[id] = at
			}
			for _, s := range wf.sources {
				if s.required && rng.Float64() < o.absent || !s.required && rng.Float64() < 0.3 {
					if s.required && wf.name != "support-assist" {
						truth.missing[id] = true
					}
					continue
				}
				asOf := at.Add(-time.Duration(rng.Float64() * float64(s.age)))
				if s.name == "policy-db" && off >= o.staleAt && off < o.staleAt+o.staleFor {
					asOf = o.start.Add(o.staleAt - 10*time.Second)
				}
				available := !(s.name == "credit-bureau" && rng.Float64() < 0.01)
				if !available {
					truth.missing[id] = true
				}
				read := map[string]any{c.DecisionLayer: c.LayerData, c.DecisionEvent: c.EventContextRead, c.DataSource: s.name,
					c.DataAsOf: asOf.Format(time.RFC3339Nano), c.DataAvailable: available}
				emit(batchOf(off)+o.readLag, at.Add(-200*time.Millisecond), with(read))
			}
			conf := 0.55 + rng.Float64()*0.44
			emit(batchOf(off), at, with(map[string]any{c.DecisionLayer: c.LayerModel, c.DecisionEvent: c.EventModelOutput,
				c.ModelName: "triage", c.ModelVersion: []string{"v1", "v2"}[rng.IntN(2)], c.ModelConfidence: conf}))
			emit(batchOf(off), at.Add(time.Second), with(map[string]any{c.DecisionLayer: c.LayerWorkflow, c.DecisionEvent: c.EventWorkflowRouted,
				c.WorkflowRoute: []string{"auto", "manual"}[rng.IntN(2)]}))
			if rng.IntN(3) == 0 {
				emit(batchOf(off)+time.Minute, at.Add(time.Minute), with(map[string]any{c.DecisionLayer: c.LayerHuman, c.DecisionEvent: c.EventHumanAction,
					c.HumanAction: []string{"accepted", "overridden", "modified"}[rng.IntN(3)], c.DecisionEventID: id + "/review"}))
			}
			if rng.IntN(5) == 0 {
				emit(batchOf(off)+2*time.Minute, at.Add(2*time.Minute), with(map[string]any{c.DecisionLayer: c.LayerBusiness, c.DecisionEvent: c.EventBusinessOutcome,
					c.BusinessOutcome: "paid", c.BusinessCycleTimeS: 120.0}))
			}
		}
	}
	sort.SliceStable(sigs, func(i, j int) bool { return sigs[i].arrives < sigs[j].arrives })
	var out []request
	for i := 0; i < len(sigs); {
		j := i
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", "incident")
		lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
		for ; j < len(sigs) && sigs[j].arrives == sigs[i].arrives; j++ {
			sigs[j].add(lrs)
		}
		out = append(out, request{arrives: sigs[i].arrives, logs: ld})
		i = j
	}
	return out, truth
}

// incidentTruth is what the generator knows of each decision of a workflow
// with a contract: its time, and whether a required read of it is absent or
// found its source unavailable (it is missing context, whatever else).
type incidentTruth struct {
	at      map[string]time.Time
	missing map[string]bool
}
