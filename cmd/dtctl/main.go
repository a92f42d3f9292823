// Command dtctl is decisiontrace's on-call CLI: it reads the decision store
// in ClickHouse and answers the first questions of a page.
//
//	dtctl decision ID     the decision's timeline across the five layers, with its verdict
//	dtctl alerts          active alerts, with example decisions
//	dtctl sources         each source's freshness against its contract budget
//
// Output is for a terminal; --json prints the same as JSON for scripts.
// The store is DECISIONTRACE_CLICKHOUSE_DSN (default the local stack's
// clickhouse://127.0.0.1:19000), with CLICKHOUSE_USER / CLICKHOUSE_PASSWORD.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/decisiontrace/decisiontrace/internal/chconn"
	"github.com/decisiontrace/decisiontrace/internal/contract"
)

const usage = `usage: dtctl [flags] decision ID | alerts | sources

flags:
`

func main() {
	fi, _ := os.Stderr.Stat()
	tty := fi != nil && fi.Mode()&os.ModeCharDevice != 0
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly, NoColor: !tty}).With().Timestamp().Logger()
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, log))
}

type options struct {
	endpoint  string
	database  string
	asJSON    bool
	contracts string
	timeout   time.Duration
}

func run(ctx context.Context, args []string, out io.Writer, log zerolog.Logger) int {
	var o options
	fs := flag.NewFlagSet("dtctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.endpoint, "endpoint", envOr("DECISIONTRACE_CLICKHOUSE_DSN", "clickhouse://127.0.0.1:19000"), "ClickHouse DSN of the decision store (env DECISIONTRACE_CLICKHOUSE_DSN)")
	fs.StringVar(&o.database, "database", "decisiontrace", "database of the decision store")
	fs.BoolVar(&o.asJSON, "json", false, "print JSON")
	fs.StringVar(&o.contracts, "contracts", envOr("DECISIONTRACE_CONTRACTS", "deploy/contracts/*.yaml"), "contract files (glob) giving the sources' freshness budgets, besides those the alertrules receiver recorded in the store (source_budgets)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "query timeout")
	// Flags may come before or after the command and its argument:
	// dtctl --json alerts, dtctl decision ID --json.
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printUsage(fs)
				return 0
			}
			log.Error().Err(err).Msg("bad flags")
			printUsage(fs)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(rest) == 0 || (rest[0] == "decision") != (len(rest) == 2) || (rest[0] != "decision" && len(rest) != 1) ||
		(rest[0] == "decision" && rest[1] == "") {
		printUsage(fs)
		return 2
	}
	if !chconn.Identifier(o.database) {
		log.Error().Str("database", o.database).Msg("--database must be a plain identifier")
		return 2
	}
	conn, err := connect(o.endpoint)
	if err != nil {
		log.Error().Err(err).Msg("ClickHouse")
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	var result interface{ text(io.Writer) }
	switch rest[0] {
	case "decision":
		result, err = loadDecision(ctx, conn, o.database, rest[1])
	case "alerts":
		result, err = loadAlerts(ctx, conn, o.database)
	case "sources":
		// The contracts at hand (optional sources included), then what the
		// evaluator recorded (the required sources it pages on).
		var budgets, stored map[string]map[string]time.Duration
		budgets, err = loadBudgets(o.contracts)
		if err == nil {
			stored, err = storedBudgets(ctx, conn, o.database)
		}
		for wf, m := range stored {
			if budgets[wf] == nil {
				budgets[wf] = map[string]time.Duration{}
			}
			for src, b := range m {
				budgets[wf][src] = b
			}
		}
		if err == nil {
			result, err = loadSources(ctx, conn, o.database, budgets, time.Now())
		}
	default:
		printUsage(fs)
		return 2
	}
	if errors.Is(err, errNotFound) {
		log.Error().Str("decision", rest[1]).Msg("no such decision in the store")
		return 1
	}
	if err != nil {
		log.Error().Err(err).Str("command", rest[0]).Msg("query failed")
		return 1
	}
	if o.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(result); err != nil {
			log.Error().Err(err).Msg("output")
			return 1
		}
		return 0
	}
	result.text(out)
	return 0
}

func printUsage(fs *flag.FlagSet) {
	fmt.Fprint(os.Stderr, usage)
	fs.SetOutput(os.Stderr)
	fs.PrintDefaults()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func connect(endpoint string) (driver.Conn, error) {
	opts, err := chconn.Options(chconn.Settings{Endpoint: endpoint, Username: os.Getenv("CLICKHOUSE_USER"),
		Password: configopaque.String(os.Getenv("CLICKHOUSE_PASSWORD")), DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	return clickhouse.Open(opts)
}

// storedBudgets reads the budgets the alertrules receiver recorded from
// the contracts it evaluates (source_budgets); none when no receiver has run.
func storedBudgets(ctx context.Context, conn driver.Conn, db string) (map[string]map[string]time.Duration, error) {
	out := map[string]map[string]time.Duration{}
	var exists uint8
	if err := conn.QueryRow(ctx, "EXISTS TABLE "+db+".source_budgets").Scan(&exists); err != nil || exists == 0 {
		return out, err
	}
	rows, err := conn.Query(ctx, "SELECT workflow, source, max_age_s FROM "+db+".source_budgets FINAL")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var wf, src string
		var secs float64
		if err := rows.Scan(&wf, &src, &secs); err != nil {
			return nil, err
		}
		if out[wf] == nil {
			out[wf] = map[string]time.Duration{}
		}
		out[wf][src] = time.Duration(secs * float64(time.Second))
	}
	return out, rows.Err()
}

// loadBudgets reads the contracts' freshness budgets: workflow → source →
// max age. No contract is no budget, not an error: sources still list.
func loadBudgets(pattern string) (map[string]map[string]time.Duration, error) {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("--contracts %q: %w", pattern, err)
	}
	out := map[string]map[string]time.Duration{}
	if len(files) == 0 {
		return out, nil
	}
	cs, err := contract.Load(files)
	if err != nil {
		return nil, err
	}
	for wf, c := range cs {
		out[wf] = map[string]time.Duration{}
		for _, s := range append(c.Sources.Required, c.Sources.Optional...) {
			if s.MaxAge > 0 {
				out[wf][s.Name] = s.MaxAge.D()
			}
		}
	}
	return out, nil
}
