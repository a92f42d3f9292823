package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"sort"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	amclient "github.com/prometheus/alertmanager/api/v2/client"
	"github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
)

// probeDepth is far over the 1000 the probe rule alerts on.
const probeDepth = 1_000_000

type probeReport struct {
	Alertmanager string    `json:"alertmanager"`
	Workflow     string    `json:"workflow"`
	Probes       int       `json:"probes"`
	Arrived      int       `json:"arrived"`
	LatenciesS   []float64 `json:"latencies_s"`
	MinS         float64   `json:"min_s"`
	MedianS      float64   `json:"median_s"`
	MaxS         float64   `json:"max_s"`
}

// probe measures event-to-alert latency through the whole pipeline: a
// queue.depth event for a queue of its own goes to the collector; the time
// until Alertmanager lists an alert with that queue label is the latency
// (the store's flush, the wait for the rule's next evaluation, the query,
// the alert's way through the exporter). The queue is drained afterwards
// so the alert resolves.
func probe(o options, exp exporter, log zerolog.Logger) int {
	u, err := url.Parse(o.probeAlertmanager)
	if err != nil || u.Host == "" {
		log.Error().Str("url", o.probeAlertmanager).Msg("--probe-alertmanager must be a URL such as http://127.0.0.1:19093")
		return 2
	}
	am := amclient.New(httptransport.New(u.Host, u.Path+amclient.DefaultBasePath, []string{u.Scheme}), strfmt.Default)
	ctx := context.Background()
	rep := probeReport{Alertmanager: o.probeAlertmanager, Workflow: o.probeWorkflow, Probes: o.probes}
	for i := 0; i < o.probes; i++ {
		if i > 0 && o.probeSpacing > 0 {
			time.Sleep(time.Second + time.Duration(rand.Int64N(int64(o.probeSpacing))))
		}
		queue := fmt.Sprintf("probe-%s-%d", o.runID, i)
		sent := time.Now()
		if err := sendDepth(ctx, exp, o.probeWorkflow, queue, probeDepth, o.timeout); err != nil {
			log.Error().Err(err).Msg("probe not accepted by the collector")
			return 1
		}
		arrived := false
		for deadline := sent.Add(o.probeTimeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			ok, err := am.Alert.GetAlerts(alert.NewGetAlertsParamsWithContext(qctx).WithFilter([]string{fmt.Sprintf("queue=%q", queue)}))
			cancel()
			if err == nil && len(ok.Payload) > 0 {
				arrived = true
				break
			}
		}
		latency := time.Since(sent)
		if !arrived {
			log.Error().Str("queue", queue).Dur("waited", latency).Msg("no alert; is a rule watching the probe workflow's queue depth (deploy/local/latency)?")
			continue
		}
		rep.Arrived++
		rep.LatenciesS = append(rep.LatenciesS, round(latency.Seconds(), 2))
		log.Info().Int("probe", i+1).Str("queue", queue).Float64("latency_s", round(latency.Seconds(), 2)).Msg("alert arrived")
		if err := sendDepth(ctx, exp, o.probeWorkflow, queue, 0, o.timeout); err != nil {
			log.Warn().Err(err).Msg("drain not accepted; the probe alert stays until its rule sees depth 0")
		}
	}
	if len(rep.LatenciesS) > 0 {
		s := append([]float64(nil), rep.LatenciesS...)
		sort.Float64s(s)
		rep.MinS, rep.MedianS, rep.MaxS = s[0], s[len(s)/2], s[len(s)-1]
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
	if rep.Arrived < rep.Probes {
		return 1
	}
	return 0
}

func sendDepth(ctx context.Context, exp exporter, workflow, queue string, depth int64, timeout time.Duration) error {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "dtloadgen-probe")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	a := lr.Attributes()
	a.PutStr(conventions.DecisionWorkflow, workflow)
	a.PutStr(conventions.DecisionLayer, conventions.LayerWorkflow)
	a.PutStr(conventions.DecisionEvent, conventions.EventQueueDepth)
	a.PutStr(conventions.WorkflowQueue, queue)
	a.PutInt(conventions.WorkflowQueueDepth, depth)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rejected, err := exp.exportLogs(ctx, ld)
	if err == nil && rejected > 0 {
		err = fmt.Errorf("the collector rejected the probe event")
	}
	return err
}
