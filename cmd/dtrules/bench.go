package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/rs/zerolog"

	"github.com/decisiontrace/decisiontrace/internal/chconn"
	"github.com/decisiontrace/decisiontrace/internal/rules"
)

type globs []string

func (g *globs) String() string     { return strings.Join(*g, ",") }
func (g *globs) Set(v string) error { *g = append(*g, v); return nil }

type benchReport struct {
	Database     string             `json:"database"`
	Events       uint64             `json:"events"`
	EventsFrom   time.Time          `json:"events_from"`
	EventsTo     time.Time          `json:"events_to"`
	Rules        int                `json:"rules"`
	Rounds       int                `json:"rounds"`
	RoundMinMS   float64            `json:"round_min_ms"`
	RoundMedMS   float64            `json:"round_median_ms"`
	RoundMaxMS   float64            `json:"round_max_ms"`
	RuleMedianMS map[string]float64 `json:"rule_median_ms"`
	Firing       map[string]int     `json:"matching_label_sets"`
}

// bench times evaluation rounds of rules over an existing decision store,
// each rule evaluated as the alertrules receiver does (its query, then the
// no-data check when nothing matched), one after the other: the round time
// is what one group holding every rule would take.
func bench(args []string, log zerolog.Logger) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	addr := fs.String("clickhouse", "127.0.0.1:19000", "ClickHouse native host:port holding the decision store (CLICKHOUSE_USER / CLICKHOUSE_PASSWORD)")
	db := fs.String("database", "decisiontrace", "database of the decision store")
	rounds := fs.Int("rounds", 10, "evaluation rounds")
	var contracts globs
	fs.Var(&contracts, "contracts", "contract files whose default rules are evaluated too (glob; repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !chconn.Identifier(*db) || *rounds < 1 {
		fmt.Fprintln(os.Stderr, "--database must be a plain identifier and --rounds at least 1")
		return 2
	}
	var contractFiles []string
	for _, g := range contracts {
		m, _ := filepath.Glob(g)
		contractFiles = append(contractFiles, m...)
	}
	groups, err := rules.Load(fs.Args(), contractFiles, time.Minute)
	if err != nil {
		log.Error().Err(err).Msg("rules")
		return 1
	}
	var ruleset []*rules.Rule
	for gi := range groups {
		for ri := range groups[gi].Rules {
			ruleset = append(ruleset, &groups[gi].Rules[ri])
		}
	}
	ctx := context.Background()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{*addr},
		Auth: clickhouse.Auth{Username: os.Getenv("CLICKHOUSE_USER"), Password: os.Getenv("CLICKHOUSE_PASSWORD")}})
	if err != nil {
		log.Error().Err(err).Msg("ClickHouse")
		return 1
	}
	defer conn.Close()
	rep := benchReport{Database: *db, Rules: len(ruleset), Rounds: *rounds, RuleMedianMS: map[string]float64{}, Firing: map[string]int{}}
	if err := conn.QueryRow(ctx, "SELECT count(), min(time), max(time) FROM "+*db+".events").Scan(&rep.Events, &rep.EventsFrom, &rep.EventsTo); err != nil {
		log.Error().Err(err).Msg("counting events")
		return 1
	}
	log.Info().Uint64("events", rep.Events).Int("rules", len(ruleset)).Msg("evaluating")

	var roundMS []float64
	perRule := make([][]float64, len(ruleset))
	for i := 0; i < *rounds; i++ {
		now := time.Now()
		start := time.Now()
		for ri, r := range ruleset {
			t := time.Now()
			samples, _, err := r.Eval(ctx, conn, *db, now)
			if err != nil {
				log.Error().Err(err).Str("rule", r.Alert).Msg("evaluation failed")
				return 1
			}
			perRule[ri] = append(perRule[ri], ms(time.Since(t)))
			rep.Firing[ruleName(r)] = len(samples)
		}
		roundMS = append(roundMS, ms(time.Since(start)))
		log.Info().Int("round", i+1).Float64("ms", roundMS[i]).Msg("round")
	}
	sort.Float64s(roundMS)
	rep.RoundMinMS, rep.RoundMedMS, rep.RoundMaxMS = roundMS[0], roundMS[len(roundMS)/2], roundMS[len(roundMS)-1]
	for ri, r := range ruleset {
		sort.Float64s(perRule[ri])
		rep.RuleMedianMS[ruleName(r)] = perRule[ri][len(perRule[ri])/2]
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
	return 0
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ruleName tells apart contract rules, which share names across workflows.
func ruleName(r *rules.Rule) string {
	if r.Workflow != "" {
		return r.Alert + "{workflow=" + r.Workflow + "}"
	}
	return r.Alert
}
