// Command dtctl is decisiontrace's on-call CLI: it reads the decision store
// in ClickHouse and answers the first questions of a page.
//
//	dtctl decision ID     the decision's verdict (as the store judges it now) and its
//	                      timeline across the five layers
//	dtctl alerts          active alerts, with example decisions
//	dtctl sources         each source's freshness against the budget of the contract
//	                      in force, and how far its reads trail the decisions
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
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/decisiontrace/decisiontrace/internal/chconn"
	"github.com/decisiontrace/decisiontrace/internal/store"
)

const usage = `usage: dtctl [flags] decision ID | alerts | sources

flags:
`

func main() {
	fi, _ := os.Stderr.Stat()
	tty := fi != nil && fi.Mode()&os.ModeCharDevice != 0
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly, NoColor: !tty}).With().Timestamp().Logger()
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, log, time.Now()))
}

type options struct {
	endpoint string
	database string
	asJSON   bool
	timeout  time.Duration
}

// run runs one command; now is the time sources' ages are measured at.
func run(ctx context.Context, args []string, out io.Writer, log zerolog.Logger, now time.Time) int {
	var o options
	fs := flag.NewFlagSet("dtctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.endpoint, "endpoint", envOr("DECISIONTRACE_CLICKHOUSE_DSN", "clickhouse://127.0.0.1:19000"), "ClickHouse DSN of the decision store (env DECISIONTRACE_CLICKHOUSE_DSN)")
	fs.StringVar(&o.database, "database", "decisiontrace", "database of the decision store")
	fs.BoolVar(&o.asJSON, "json", false, "print JSON")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "query timeout")
	contracts := fs.String("contracts", "", "ignored: budgets come from the contracts the collector keeps in the store (contract_sources)")
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
	if *contracts != "" {
		log.Warn().Msg("--contracts is ignored: budgets come from the contracts in force in the store (contract_sources)")
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
		result, err = loadSources(ctx, conn, o.database, now)
	default:
		printUsage(fs)
		return 2
	}
	if err != nil && !errors.Is(err, errNotFound) && rest[0] != "alerts" {
		// Say so when the store is older than the verdicts these read.
		if serr := needVerdicts(ctx, conn, o.database); errors.Is(serr, errOldSchema) {
			err = serr
		}
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
	result.text(terminalSafe{out})
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

// verdictsSchema is the first schema version with verdicts, contracts
// and read lag in the store.
const verdictsSchema = 2

var errOldSchema = errors.New("no decisiontrace schema with verdicts")

// needVerdicts checks that the store's schema has what decision and sources
// read.
func needVerdicts(ctx context.Context, conn driver.Conn, db string) error {
	var exists uint8
	if err := conn.QueryRow(ctx, "EXISTS TABLE "+db+".schema_migrations").Scan(&exists); err != nil {
		return err
	}
	var v uint32
	if exists == 1 {
		var err error
		if v, err = store.New(conn, db, store.Layout{}).Version(ctx); err != nil {
			return err
		}
	}
	if v < verdictsSchema {
		return fmt.Errorf("database %s has schema version %d, need %d: start the collector of this release on it once to migrate it: %w", db, v, verdictsSchema, errOldSchema)
	}
	return nil
}
