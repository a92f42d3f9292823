package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/rs/zerolog"

	"github.com/decisiontrace/decisiontrace/internal/chconn"
	"github.com/decisiontrace/decisiontrace/internal/contract"
	"github.com/decisiontrace/decisiontrace/internal/rules"
	"github.com/decisiontrace/decisiontrace/internal/store"
)

type globs []string

func (g *globs) String() string     { return strings.Join(*g, ",") }
func (g *globs) Set(v string) error { *g = append(*g, v); return nil }

type benchReport struct {
	Database   string    `json:"database"`
	Events     uint64    `json:"events"`
	EventsFrom time.Time `json:"events_from"`
	EventsTo   time.Time `json:"events_to"`
	Verdicts   uint64    `json:"verdicts"`
	// EvaluatedAt is --at; the rounds' own time when empty.
	EvaluatedAt time.Time `json:"evaluated_at,omitzero"`
	Rules       int       `json:"rules"`
	// Queries is how many queries a round's rules take: rules that read
	// the same rows share one (rules.Together).
	Queries int `json:"queries"`
	Rounds  int `json:"rounds"`
	// CatchUpMS is the refresh before the first round: on a store whose
	// verdicts were never refreshed, or not for long, it judges the
	// backlog, which the rounds' refreshes then do not.
	CatchUpMS float64 `json:"catch_up_refresh_ms"`
	// Changed is --changed, and ChangedDecisions how many decisions each
	// round's refresh had to judge for it.
	Changed          string `json:"changed,omitempty"`
	ChangedDecisions uint64 `json:"changed_decisions,omitempty"`
	// A round is one verdict refresh and then every rule as the receiver
	// evaluates them: all groups at once, each group's rules --concurrency
	// at a time; the refresh's time is in the round's and also on its own.
	RoundMinMS float64 `json:"round_min_ms"`
	RoundMedMS float64 `json:"round_median_ms"`
	RoundMaxMS float64 `json:"round_max_ms"`
	// SequentialMedMS is the median round as the sum of its parts: the
	// refresh and each rule's own time, one after the other.
	SequentialMedMS float64            `json:"sequential_round_median_ms"`
	RefreshMinMS    float64            `json:"refresh_min_ms"`
	RefreshMedMS    float64            `json:"refresh_median_ms"`
	RefreshMaxMS    float64            `json:"refresh_max_ms"`
	RuleMedianMS    map[string]float64 `json:"rule_median_ms"`
	// The rows ClickHouse read for a round's rules (the refresh's not
	// included), median over the rounds, and for each rule: what a round
	// costs on any machine, and which rules grow with the store.
	RoundReadRows uint64            `json:"round_read_rows"`
	RuleReadRows  map[string]uint64 `json:"rule_read_rows"`
	Firing        map[string]int    `json:"matching_label_sets"`
}

// bench times evaluation rounds of rules over an existing decision store,
// as the alertrules receiver runs them: a verdict refresh (which the
// receiver runs every verdict_refresh_interval, and which the verdict rules
// read), then every rule (its query, the no-data check when nothing
// matched, and the idle check when there was no data) as the receiver
// evaluates them: each group in its own loop, all at once, and within a
// group --concurrency rules at a time. The round time is how long until
// every rule has been evaluated once on refreshed verdicts; the sequential
// round adds up the parts.
func bench(args []string, log zerolog.Logger, out io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	addr := fs.String("clickhouse", "127.0.0.1:19000", "ClickHouse native host:port holding the decision store (CLICKHOUSE_USER / CLICKHOUSE_PASSWORD)")
	db := fs.String("database", "decisiontrace", "database of the decision store")
	rounds := fs.Int("rounds", 10, "evaluation rounds")
	concurrency := fs.Int("concurrency", 1, "queries of a group's rules run at once, as the receiver's rule_query_concurrency (its default is 1)")
	cluster := fs.String("cluster", "", "cluster of a clustered store (its writes wait for every shard, as the receiver's do)")
	writeContracts := fs.Bool("write-contracts", false, "write the --contracts into the store first, in force from now, as the receiver does at start (a changed contract then judges the store's decisions anew: not on a store in use)")
	changed := fs.Duration("changed", 0, "before each round, mark as changed the decisions with a model output in this long before the evaluation time, as traffic at the store's own rate leaves them for the refresh to judge (0: only what really changed)")
	at := fs.String("at", "", "evaluate the rules as at this time (RFC 3339, or latest: just after the newest stored event) instead of now, so that a kept store measures the same later")
	var contracts globs
	fs.Var(&contracts, "contracts", "contract files whose default rules are evaluated too (glob; repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !chconn.Identifier(*db) || *rounds < 1 || *concurrency < 1 || *changed < 0 || (*cluster != "" && !chconn.Identifier(*cluster)) {
		fmt.Fprintln(os.Stderr, "--database (and --cluster) must be plain identifiers, --rounds and --concurrency at least 1, --changed not negative")
		return 2
	}
	var evalAt time.Time
	if *at != "" && *at != "latest" {
		t, err := time.Parse(time.RFC3339Nano, *at)
		if err != nil {
			fmt.Fprintf(os.Stderr, "--at %q: want an RFC 3339 time or latest\n", *at)
			return 2
		}
		evalAt = t
	}
	contractFiles, errs := contract.Expand("", "--contracts", contracts)
	cs, errContracts := contract.Load(contractFiles)
	groups, err := rules.Load(fs.Args(), cs, time.Minute)
	if err := errors.Join(append(errs, errContracts, err)...); err != nil {
		log.Error().Err(err).Msg("rules")
		return 1
	}
	byGroup := make([][]*rules.Rule, len(groups))
	for gi := range groups {
		for ri := range groups[gi].Rules {
			byGroup[gi] = append(byGroup[gi], &groups[gi].Rules[ri])
		}
	}
	ruleset := slices.Concat(byGroup...)
	ctx := context.Background()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{*addr},
		Auth: clickhouse.Auth{Username: os.Getenv("CLICKHOUSE_USER"), Password: os.Getenv("CLICKHOUSE_PASSWORD")}})
	if err != nil {
		log.Error().Err(err).Msg("ClickHouse")
		return 1
	}
	defer conn.Close()
	st := store.New(conn, *db, store.Layout{Cluster: *cluster}).AtRest()
	// The bench reads a store in use and changes only its verdicts: one an
	// older decisiontrace left is migrated by the collector, not here.
	if v, err := st.Version(ctx); err != nil || v != store.Latest() {
		if err == nil {
			err = fmt.Errorf("database %s is at schema version %d, this dtrules knows %d: start this version's collector on it once (it migrates the schema)", *db, v, store.Latest())
		}
		log.Error().Err(err).Msg("decision store")
		return 1
	}
	if *writeContracts {
		if err := st.WriteContracts(ctx, cs, time.Now()); err != nil {
			log.Error().Err(err).Msg("writing contracts")
			return 1
		}
	}
	rep := benchReport{Database: *db, Rules: len(ruleset), Rounds: *rounds, RuleMedianMS: map[string]float64{},
		RuleReadRows: map[string]uint64{}, Firing: map[string]int{}}
	for _, g := range byGroup {
		rep.Queries += len(rules.Together(g))
	}
	if err := conn.QueryRow(ctx, "SELECT count(), min(time), max(time) FROM "+*db+".events").Scan(&rep.Events, &rep.EventsFrom, &rep.EventsTo); err != nil {
		log.Error().Err(err).Msg("counting events")
		return 1
	}
	if *at == "latest" {
		// Rules evaluate at millisecond precision: the next millisecond
		// holds the newest event.
		evalAt = rep.EventsTo.Truncate(time.Millisecond).Add(time.Millisecond)
	}
	if !evalAt.IsZero() {
		rep.EvaluatedAt = evalAt.UTC()
	}
	log.Info().Uint64("events", rep.Events).Int("rules", len(ruleset)).Msg("catching up on verdicts")
	started := time.Now()
	if _, err := st.RefreshVerdicts(ctx); err != nil {
		log.Error().Err(err).Msg("refreshing verdicts")
		return 1
	}
	rep.CatchUpMS = ms(time.Since(started))
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+*db+".verdicts FINAL").Scan(&rep.Verdicts); err != nil {
		log.Error().Err(err).Msg("counting verdicts")
		return 1
	}
	log.Info().Uint64("verdicts", rep.Verdicts).Float64("catch_up_ms", rep.CatchUpMS).Msg("evaluating")

	var roundMS, refreshMS, sequentialMS []float64
	var roundRows []uint64
	perRule := make([][]float64, len(ruleset))
	perRuleRows := make([][]uint64, len(ruleset))
	for i := 0; i < *rounds; i++ {
		now := evalAt
		if now.IsZero() {
			now = time.Now()
		}
		if *changed > 0 {
			n, err := markChanged(ctx, st, now, *changed)
			if err != nil {
				log.Error().Err(err).Msg("marking decisions changed")
				return 1
			}
			rep.Changed, rep.ChangedDecisions = changed.String(), n
		}
		start := time.Now()
		if _, err := st.RefreshVerdicts(ctx); err != nil {
			log.Error().Err(err).Msg("refreshing verdicts")
			return 1
		}
		refreshMS = append(refreshMS, ms(time.Since(start)))
		// As the receiver runs them: every group at once, each group's
		// rules *concurrency at a time.
		results := make([][]rules.Result, len(byGroup))
		var wg sync.WaitGroup
		for gi, g := range byGroup {
			wg.Go(func() { results[gi] = rules.EvalAll(ctx, conn, *db, now, g, *concurrency, time.Minute) })
		}
		wg.Wait()
		roundMS = append(roundMS, ms(time.Since(start)))
		sequential := refreshMS[i]
		var rows uint64
		for ri, res := range slices.Concat(results...) {
			r := ruleset[ri]
			if res.Err != nil {
				log.Error().Err(res.Err).Str("rule", r.Alert).Msg("evaluation failed")
				return 1
			}
			perRule[ri] = append(perRule[ri], ms(res.Took))
			perRuleRows[ri] = append(perRuleRows[ri], res.ReadRows)
			sequential += ms(res.Took)
			rows += res.ReadRows
			rep.Firing[ruleName(r)] = len(res.Samples)
		}
		sequentialMS = append(sequentialMS, sequential)
		roundRows = append(roundRows, rows)
		log.Info().Int("round", i+1).Float64("ms", roundMS[i]).Float64("refresh_ms", refreshMS[i]).Msg("round")
	}
	rep.RoundMinMS, rep.RoundMedMS, rep.RoundMaxMS = spread(roundMS)
	_, rep.SequentialMedMS, _ = spread(sequentialMS)
	rep.RefreshMinMS, rep.RefreshMedMS, rep.RefreshMaxMS = spread(refreshMS)
	_, rep.RoundReadRows, _ = spread(roundRows)
	for ri, r := range ruleset {
		_, rep.RuleMedianMS[ruleName(r)], _ = spread(perRule[ri])
		_, rep.RuleReadRows[ruleName(r)], _ = spread(perRuleRows[ri])
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
	return 0
}

// markChanged records as changed now the decisions with a model output in
// the span before at, as the store's materialized view does when their
// signals are stored, and says how many.
func markChanged(ctx context.Context, st *store.Store, at time.Time, span time.Duration) (uint64, error) {
	from, until := at.Add(-span).UnixMilli(), at.UnixMilli()
	where := ` FROM ` + st.DB() + `.events WHERE layer = 'model' AND event = 'model.output' AND time >= ` + chconn.MilliParam + ` AND time < ` + chconn.MilliParam
	if err := st.Conn().Exec(st.WriteContext(ctx), `INSERT INTO `+st.DB()+`.decision_changes (changed_at, decision_id, workflow)
SELECT DISTINCT now64(3), decision_id, toString(workflow)`+where, from, until); err != nil {
		return 0, err
	}
	var n uint64
	err := st.Conn().QueryRow(ctx, `SELECT uniqExact(decision_id)`+where, from, until).Scan(&n)
	return n, err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// spread is the minimum, median and maximum of samples (sorted in place).
func spread[T cmp.Ordered](samples []T) (lo, med, hi T) {
	slices.Sort(samples)
	return samples[0], samples[len(samples)/2], samples[len(samples)-1]
}

// ruleName tells apart contract rules, which share names across workflows
// (and, for SLOs, within one).
func ruleName(r *rules.Rule) string {
	if r.Workflow == "" {
		return r.Alert
	}
	name := r.Alert + "{workflow=" + r.Workflow
	if slo := r.Labels["slo"]; slo != "" {
		name += ",slo=" + slo
	}
	return name + "}"
}
