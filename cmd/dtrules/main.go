// Command dtrules checks and unit-tests decisiontrace alerting rules, as
// promtool does for Prometheus rules:
//
//	dtrules check FILE...     validate rule files
//	dtrules test FILE...      run rule test files on ClickHouse
//	dtrules bench FILE...     time evaluation rounds (a verdict refresh and
//	                          every rule) on a decision store
//	dtrules contract FILE...  each contract's answers to the essay's nine
//	                          questions and the rules that watch them;
//	                          exits 1 when a question is unanswered
//
// Tests run on the embedded ClickHouse engine (started in a temporary
// directory and stopped afterwards) unless --clickhouse names a server
// (CLICKHOUSE_USER / CLICKHOUSE_PASSWORD for its credentials).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/decisiontrace/decisiontrace/internal/chlocal"
	"github.com/decisiontrace/decisiontrace/internal/rules"
	"github.com/decisiontrace/decisiontrace/internal/ruleunit"
)

func main() {
	// The embedded ClickHouse server is this binary, re-executed.
	chlocal.ServeIfChild()
	fi, _ := os.Stderr.Stat()
	tty := fi != nil && fi.Mode()&os.ModeCharDevice != 0
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly, NoColor: !tty}).With().Timestamp().Logger()
	os.Exit(run(os.Args[1:], log))
}

func run(args []string, log zerolog.Logger) int {
	if len(args) < 2 || (args[0] != "check" && args[0] != "test" && args[0] != "bench" && args[0] != "contract") {
		fmt.Fprintln(os.Stderr, "usage: dtrules check RULE_FILE... | dtrules test [--clickhouse host:9000] TEST_FILE... | dtrules bench [flags] RULE_FILE... | dtrules contract CONTRACT_FILE...")
		return 2
	}
	if args[0] == "contract" {
		return answers(args[1:], os.Stdout, os.Stderr)
	}
	if args[0] == "bench" {
		return bench(args[1:], log, os.Stdout)
	}
	if args[0] == "check" {
		if _, err := rules.LoadFiles(args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("%d rule file(s) valid\n", len(args)-1)
		return 0
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	addr := fs.String("clickhouse", "", "ClickHouse native host:port (default: start the embedded engine)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	env := ruleunit.Env{Addr: *addr, Username: os.Getenv("CLICKHOUSE_USER"), Password: os.Getenv("CLICKHOUSE_PASSWORD")}
	if env.Addr == "" {
		dir, err := os.MkdirTemp("", "dtrules-")
		if err != nil {
			log.Error().Err(err).Msg("temporary directory")
			return 1
		}
		defer os.RemoveAll(dir)
		srv, err := chlocal.Start(context.Background(), chlocal.Options{DataDir: dir})
		if err != nil {
			log.Error().Err(err).Msg("embedded ClickHouse (run `go run ./cmd/dtlocal fetch` once, or pass --clickhouse)")
			return 1
		}
		defer func() { _ = srv.Stop() }()
		env.Addr = srv.TCPAddr()
	}
	ok := true
	for _, f := range fs.Args() {
		results, err := ruleunit.Run(context.Background(), env, f)
		if err != nil {
			log.Error().Err(err).Str("file", f).Msg("cannot run")
			ok = false
			continue
		}
		out, passed := ruleunit.Summary(results)
		fmt.Printf("%s\n%s", f, out)
		ok = ok && passed
	}
	if !ok {
		return 1
	}
	return 0
}
