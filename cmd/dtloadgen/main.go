// Command dtloadgen sends realistic decision traffic (all five layers of
// claims, lending, support and maintenance decisions) to a collector over
// OTLP, reports what the collector accepted, and in bench mode measures how
// long it takes until ClickHouse can query all of it.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/decisiontrace/decisiontrace/internal/chconn"
)

type options struct {
	protocol       string
	endpoint       string
	compression    string
	rate           float64
	duration       time.Duration
	events         int64
	batch          int
	workers        int
	seed           uint64
	staleShare     float64
	missingShare   float64
	runID          string
	signalInterval time.Duration
	actAfter       time.Duration
	timeout        time.Duration
	maxRetries     int
	tokenFile      string

	incidentSource string
	incidentAfter  time.Duration
	incidentFor    time.Duration
	entities       uint64
	writeAliases   string
	aliasCoverage  float64

	verifyAddr    string
	verifySchema  string
	database      string
	verifyTimeout time.Duration
	collectorPID  int

	probeAlertmanager string
	probes            int
	probeWorkflow     string
	probeSpacing      time.Duration
	probeTimeout      time.Duration
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("dtloadgen", flag.ContinueOnError)
	fs.StringVar(&o.protocol, "protocol", "grpc", "transport: grpc or http (OTLP), or json (the decisionevents receiver's /v1/decision-events)")
	fs.StringVar(&o.endpoint, "endpoint", "", "collector endpoint (default 127.0.0.1:4317 for grpc, 127.0.0.1:4318 for http, 127.0.0.1:4320 for json)")
	fs.StringVar(&o.compression, "compression", "none", "request compression: none or gzip")
	fs.Float64Var(&o.rate, "rate", 0, "events per second across all workers; 0 = as fast as possible")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long; 0 = until --events or Ctrl-C")
	fs.Int64Var(&o.events, "events", 0, "stop after this many events; 0 = no limit")
	fs.IntVar(&o.batch, "batch", 500, "events per request pair (logs + traces)")
	fs.IntVar(&o.workers, "workers", 4, "concurrent senders")
	fs.Uint64Var(&o.seed, "seed", 0, "random seed; 0 = random")
	fs.Float64Var(&o.staleShare, "stale-share", 0.02, "fraction of decisions with a context read hours old")
	fs.Float64Var(&o.missingShare, "missing-share", 0.01, "fraction of decisions missing a required context read")
	fs.StringVar(&o.incidentSource, "incident-source", "", "a source that stops updating (its data.as_of freezes) during the run, e.g. policy-db")
	fs.DurationVar(&o.incidentAfter, "incident-after", 2*time.Minute, "when the incident starts, after the run's start")
	fs.DurationVar(&o.incidentFor, "incident-for", 10*time.Minute, "how long the incident lasts")
	fs.Uint64Var(&o.entities, "entities", defaultEntities, "distinct entity IDs per source system")
	fs.StringVar(&o.writeAliases, "write-aliases", "", "write an alias map (CSV for the decision processor) of the entity IDs to this file and exit")
	fs.Float64Var(&o.aliasCoverage, "alias-coverage", 0.97, "share of entity IDs --write-aliases maps; the rest stay unresolved")
	fs.StringVar(&o.runID, "run-id", "", "run ID, sent as service.instance.id and prefix of decision IDs (default random)")
	fs.DurationVar(&o.signalInterval, "signal-interval", 10*time.Second, "interval of source.freshness and queue.depth signals; 0 = none")
	fs.DurationVar(&o.actAfter, "act-after", 0, "send each human action a quarter to 1.75 times this after its recommendation, and the outcome this long after the action, when they happen; 0 = with the decision's other signals (the last decisions of a run may end without them)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request timeout")
	fs.IntVar(&o.maxRetries, "max-retries", 3, "retries of a request the collector refused with back-pressure")
	fs.StringVar(&o.tokenFile, "token-file", os.Getenv("DECISIONTRACE_TOKEN_FILE"), "send `Authorization: Bearer <the file's content>` with every request, for a collector whose ingest requires a token (deploy/local/auth.yaml); default $DECISIONTRACE_TOKEN_FILE")
	fs.StringVar(&o.verifyAddr, "verify-clickhouse", "", "ClickHouse native host:port; after sending, wait until all events are queryable (CLICKHOUSE_USER/CLICKHOUSE_PASSWORD)")
	fs.StringVar(&o.database, "database", "decisiontrace", "ClickHouse database for --verify-clickhouse")
	fs.StringVar(&o.verifySchema, "verify-schema", schemaDecisiontrace, "where --verify-clickhouse finds the events: decisiontrace (its events table, distinct event IDs) or otel (contrib clickhouseexporter's otel_logs and otel_traces, rows)")
	fs.DurationVar(&o.verifyTimeout, "verify-timeout", 2*time.Minute, "how long to wait for ClickHouse")
	fs.IntVar(&o.collectorPID, "collector-pid", 0, "report this process's peak and current RSS")
	fs.StringVar(&o.probeAlertmanager, "probe-alertmanager", "", "instead of traffic, measure event-to-alert latency: send probe events that a queue_depth rule turns into an alert, and time their arrival in this Alertmanager (e.g. http://127.0.0.1:19093)")
	fs.IntVar(&o.probes, "probes", 8, "probe events (--probe-alertmanager)")
	fs.StringVar(&o.probeWorkflow, "probe-workflow", "latency-probe", "workflow of the probe events; its rule alerts on queue depth over 1000")
	fs.DurationVar(&o.probeSpacing, "probe-spacing", 15*time.Second, "between probes, wait a random time of up to this (set it to the rule's interval), so probes land at every phase of the evaluation cycle")
	fs.DurationVar(&o.probeTimeout, "probe-timeout", 2*time.Minute, "how long to wait for one probe's alert")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.entities == 0 {
		return o, errors.New("--entities must be at least 1")
	}
	if o.aliasCoverage < 0 || o.aliasCoverage > 1 {
		return o, errors.New("--alias-coverage must be a fraction between 0 and 1")
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	switch o.protocol {
	case "grpc":
		if o.endpoint == "" {
			o.endpoint = "127.0.0.1:4317"
		}
	case "http":
		if o.endpoint == "" {
			o.endpoint = "127.0.0.1:4318"
		}
	case "json":
		if o.endpoint == "" {
			o.endpoint = "127.0.0.1:4320"
		}
	default:
		return o, fmt.Errorf("--protocol must be grpc, http or json, not %q", o.protocol)
	}
	switch o.compression {
	case "none", "", "gzip":
	default:
		return o, fmt.Errorf("--compression must be none or gzip, not %q", o.compression)
	}
	switch {
	case o.batch < 1:
		return o, errors.New("--batch must be at least 1")
	case o.workers < 1:
		return o, errors.New("--workers must be at least 1")
	case o.rate < 0 || math.IsNaN(o.rate) || math.IsInf(o.rate, 0):
		return o, errors.New("--rate must be a non-negative number")
	case o.events < 0:
		return o, errors.New("--events must not be negative")
	case o.actAfter < 0:
		return o, errors.New("--act-after must not be negative")
	case o.staleShare < 0 || o.missingShare < 0 || o.staleShare+o.missingShare > 1:
		return o, errors.New("--stale-share and --missing-share must be fractions that add up to at most 1")
	case o.verifySchema != schemaDecisiontrace && o.verifySchema != schemaOTel:
		return o, fmt.Errorf("--verify-schema %q: want %s or %s", o.verifySchema, schemaDecisiontrace, schemaOTel)
	case o.verifyAddr != "" && !chconn.Identifier(o.database):
		return o, fmt.Errorf("--database %q is not a plain identifier", o.database)
	case o.maxRetries < 0:
		return o, errors.New("--max-retries must not be negative")
	case o.probeAlertmanager != "" && o.probes < 1:
		return o, errors.New("--probes must be at least 1")
	}
	if o.runID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		o.runID = hex.EncodeToString(b[:])
	}
	if o.seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		for _, c := range b {
			o.seed = o.seed<<8 | uint64(c)
		}
	}
	return o, nil
}

type signalReport struct {
	SentEvents     int64 `json:"sent_events"`
	FailedEvents   int64 `json:"failed_events"`
	RejectedEvents int64 `json:"rejected_events"`
	Requests       int64 `json:"requests"`
	FailedRequests int64 `json:"failed_requests"`
	Retries        int64 `json:"retries"`
}

type report struct {
	RunID        string       `json:"run_id"`
	Protocol     string       `json:"protocol"`
	Endpoint     string       `json:"endpoint"`
	Compression  string       `json:"compression"`
	Seed         uint64       `json:"seed"`
	Workers      int          `json:"workers"`
	Batch        int          `json:"batch"`
	TargetRate   float64      `json:"target_rate"`
	Decisions    int64        `json:"decisions"`
	signalReport              // totals over both signals
	DurationS    float64      `json:"duration_s"`
	EventsPerS   float64      `json:"events_per_s"`
	LastError    string       `json:"last_error,omitempty"`
	Logs         signalReport `json:"logs"`
	Traces       signalReport `json:"traces"`

	// Bench mode.
	StoredEvents         *uint64  `json:"stored_events,omitempty"`
	StoredRows           *uint64  `json:"stored_rows,omitempty"`
	Duplicates           *int64   `json:"duplicates,omitempty"`
	VerifyComplete       *bool    `json:"verify_complete,omitempty"`
	EndToEndS            *float64 `json:"end_to_end_s,omitempty"`
	EndToEndEventsPerS   *float64 `json:"end_to_end_events_per_s,omitempty"`
	VerifyError          string   `json:"verify_error,omitempty"`
	CollectorPeakRSSMB   *float64 `json:"collector_peak_rss_mb,omitempty"`
	CollectorRSSMB       *float64 `json:"collector_rss_mb,omitempty"`
	CollectorMemoryError string   `json:"collector_memory_error,omitempty"`
}

func signalOf(s *signalStats) signalReport {
	return signalReport{
		SentEvents: s.sent.Load(), FailedEvents: s.failed.Load(), RejectedEvents: s.rejected.Load(),
		Requests: s.requests.Load(), FailedRequests: s.failedRequests.Load(), Retries: s.retries.Load(),
	}
}

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

func main() {
	// Colour codes only for a terminal: logs redirected to a file stay greppable.
	fi, _ := os.Stderr.Stat()
	tty := fi != nil && fi.Mode()&os.ModeCharDevice != 0
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly, NoColor: !tty}).With().Timestamp().Logger()
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		log.Error().Err(err).Msg("bad flags")
		os.Exit(2)
	}
	os.Exit(mainErr(o, log))
}

func mainErr(o options, log zerolog.Logger) int {
	if o.writeAliases != "" {
		n, err := writeAliasFile(o.writeAliases, o.entities, o.aliasCoverage)
		if err != nil {
			log.Error().Err(err).Msg("write aliases")
			return 1
		}
		log.Info().Str("file", o.writeAliases).Int("aliases", n).Msg("alias map written")
		return 0
	}
	var authorization string
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil || strings.TrimSpace(string(b)) == "" {
			log.Error().Err(err).Str("file", o.tokenFile).Msg("--token-file: no token in it")
			return 2
		}
		authorization = "Bearer " + strings.TrimSpace(string(b))
	}
	var exp exporter
	gz := o.compression == "gzip"
	if o.protocol == "grpc" {
		e, err := newGRPCExporter(o.endpoint, gz)
		if err != nil {
			log.Error().Err(err).Msg("gRPC client")
			return 1
		}
		e.authorization = authorization
		exp = e
	} else if o.protocol == "json" {
		e := newJSONExporter(o.endpoint, gz, o.workers)
		e.http.authorization = authorization
		exp = e
	} else {
		e := newHTTPExporter(o.endpoint, gz, o.workers)
		e.authorization = authorization
		exp = e
	}
	defer func() { _ = exp.close() }()
	if o.probeAlertmanager != "" {
		return probe(o, exp, log)
	}

	batchSize := o.batch
	if o.rate > 0 {
		// At low rates a full batch would arrive as one burst every few
		// seconds; about ten requests a second looks like real traffic.
		if b := int(math.Ceil(o.rate / 10)); b < batchSize {
			batchSize = b
			log.Info().Int("batch", batchSize).Msg("batch reduced to keep the rate smooth")
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}

	st := &stats{}
	log.Info().Str("run_id", o.runID).Str("protocol", o.protocol).Str("endpoint", o.endpoint).
		Float64("rate", o.rate).Int64("events", o.events).Int("workers", o.workers).Int("batch", batchSize).
		Uint64("seed", o.seed).Msg("sending")
	start := time.Now()
	done := make(chan struct{})
	go progress(done, st, log)
	run(ctx, runConfig{
		gen: genConfig{
			runID: o.runID, seed: o.seed, staleShare: o.staleShare, missingShare: o.missingShare,
			signalInterval: o.signalInterval, entities: o.entities, actAfter: o.actAfter,
			incident: incident{source: o.incidentSource, start: time.Now().Add(o.incidentAfter),
				end: time.Now().Add(o.incidentAfter + o.incidentFor)},
		},
		batch: batchSize, workers: o.workers, rate: o.rate, events: o.events,
		deliver: deliverer{exp: exp, timeout: o.timeout, maxRetries: o.maxRetries, backoff: 200 * time.Millisecond},
	}, st)
	close(done)
	elapsed := time.Since(start)
	if fs := st.firstSend.Load(); fs > 0 {
		elapsed = time.Since(time.Unix(0, fs))
	}

	r := report{
		RunID: o.runID, Protocol: o.protocol, Endpoint: o.endpoint, Compression: o.compression,
		Seed: o.seed, Workers: o.workers, Batch: batchSize, TargetRate: o.rate,
		Decisions: st.decisions.Load(),
		Logs:      signalOf(&st.logs), Traces: signalOf(&st.traces),
		DurationS: round(elapsed.Seconds(), 3), LastError: st.lastError(),
	}
	r.signalReport = signalReport{
		SentEvents: st.sent(), FailedEvents: st.failed(),
		RejectedEvents: r.Logs.RejectedEvents + r.Traces.RejectedEvents,
		Requests:       r.Logs.Requests + r.Traces.Requests,
		FailedRequests: r.Logs.FailedRequests + r.Traces.FailedRequests,
		Retries:        r.Logs.Retries + r.Traces.Retries,
	}
	if elapsed > 0 {
		r.EventsPerS = round(float64(r.SentEvents)/elapsed.Seconds(), 1)
	}
	log.Info().Int64("sent", r.SentEvents).Int64("failed", r.FailedEvents).Int64("rejected", r.RejectedEvents).
		Float64("events_per_s", r.EventsPerS).Msg("sending done")

	rc := 0
	if r.SentEvents == 0 && r.FailedEvents+r.RejectedEvents > 0 {
		rc = 1
	}
	if o.verifyAddr != "" && r.SentEvents > 0 {
		// A fresh context: a Ctrl-C that ended sending should not skip the
		// measurement, a second one ends it.
		stop()
		vctx, vstop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		since := time.Unix(0, st.firstSend.Load())
		res, err := verify(vctx, verifyConfig{
			addr: o.verifyAddr, database: o.database, schema: o.verifySchema,
			user: os.Getenv("CLICKHOUSE_USER"), password: os.Getenv("CLICKHOUSE_PASSWORD"),
			timeout: o.verifyTimeout, interval: 250 * time.Millisecond,
		}, o.runID, r.SentEvents, since, log)
		vstop()
		stored, raw := res.stored, res.storedRaw
		r.StoredEvents, r.VerifyComplete = &stored, &res.complete
		if err != nil {
			r.VerifyError = err.Error()
			rc = 1
		} else {
			dup := int64(raw) - int64(stored)
			r.StoredRows, r.Duplicates = &raw, &dup
		}
		if res.complete {
			e2e := res.queryableAt.Sub(since).Seconds()
			rate := round(float64(r.SentEvents)/e2e, 1)
			e2e = round(e2e, 3)
			r.EndToEndS, r.EndToEndEventsPerS = &e2e, &rate
		} else {
			if r.VerifyError == "" {
				r.VerifyError = fmt.Sprintf("only %d of %d events queryable after %s", stored, r.SentEvents, o.verifyTimeout)
				if res.lastErr != "" {
					r.VerifyError += "; last query error: " + res.lastErr
				}
			}
			rc = 1
		}
	}
	if o.collectorPID > 0 {
		peak, cur, err := procMemory(o.collectorPID)
		if err != nil {
			r.CollectorMemoryError = err.Error()
		} else {
			peak, cur = round(peak, 1), round(cur, 1)
			r.CollectorPeakRSSMB, r.CollectorRSSMB = &peak, &cur
		}
	}

	line, _ := json.Marshal(r)
	fmt.Fprintln(os.Stdout, string(line))
	fmt.Fprintln(os.Stderr, humanLine(r))
	return rc
}

func humanLine(r report) string {
	s := fmt.Sprintf("run %s: sent %d events (%d logs, %d spans) of %d decisions in %.1fs, %.0f events/s; failed %d, rejected %d, %d requests",
		r.RunID, r.SentEvents, r.Logs.SentEvents, r.Traces.SentEvents, r.Decisions, r.DurationS, r.EventsPerS,
		r.FailedEvents, r.RejectedEvents, r.Requests)
	if r.EndToEndEventsPerS != nil {
		s += fmt.Sprintf("; all queryable after %.1fs: %.0f events/s end-to-end", *r.EndToEndS, *r.EndToEndEventsPerS)
	}
	if r.StoredEvents != nil && r.EndToEndEventsPerS == nil {
		s += fmt.Sprintf("; only %d stored", *r.StoredEvents)
	}
	if r.CollectorPeakRSSMB != nil {
		s += fmt.Sprintf("; collector peak RSS %.1f MB", *r.CollectorPeakRSSMB)
	}
	if r.LastError != "" {
		s += "; last error: " + r.LastError
	}
	return s
}

func progress(done <-chan struct{}, st *stats, log zerolog.Logger) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	last, lastAt := int64(0), time.Now()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			sent := st.sent()
			ev := log.Info().Int64("sent", sent).Int64("failed", st.failed()).
				Int64("rejected", st.logs.rejected.Load()+st.traces.rejected.Load()).
				Int64("decisions", st.decisions.Load()).
				Float64("events_per_s", round(float64(sent-last)/now.Sub(lastAt).Seconds(), 1))
			if e := st.lastError(); e != "" {
				ev = ev.Str("last_error", e)
			}
			ev.Msg("progress")
			last, lastAt = sent, now
		}
	}
}
