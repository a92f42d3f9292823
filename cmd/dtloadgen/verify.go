package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/rs/zerolog"

	"github.com/decisiontrace/decisiontrace/internal/chconn"
)

type verifyConfig struct {
	addr     string
	database string
	// schema is where the run's events land: decisiontrace's events
	// table, or the otel_logs and otel_traces tables of contrib's
	// clickhouseexporter (the stock pipeline of the side-by-side
	// benchmark), which keep no event ID: there rows are counted.
	schema   string
	user     string
	password string
	timeout  time.Duration
	// interval is the shortest wait between two polls (see pollWait).
	interval time.Duration
}

// pollShare bounds the verify polls to a fifth of the time: each scans
// the whole run's events (the resource map is read for every row), 150 ms
// at 1M events on two cores, and polled every 250 ms regardless they took
// most of a core from the ingestion they were waiting for.
const pollShare = 5

// pollWait is how long to wait after a poll that took took: at least
// interval, and pollShare times the poll, so that polling takes at most
// 1/pollShare of the time. The time all events became queryable is then
// known to within the wait (its report is the start of the poll that saw
// them all).
func pollWait(interval, took time.Duration) time.Duration {
	return max(interval, pollShare*took)
}

// The schemas --verify-schema knows.
const (
	schemaDecisiontrace = "decisiontrace"
	schemaOTel          = "otel"
)

type verifyResult struct {
	stored        uint64 // distinct event IDs
	storedRaw     uint64 // rows, duplicates included
	complete      bool
	queryableAt   time.Time
	lastErr       string
	lastQueryTime time.Duration
	scans         int // polls that read the run's rows
}

// verify polls ClickHouse until every accepted event of the run is
// queryable. since bounds the scan to the run's partitions; the filter on the
// resource map alone would read the whole table on every poll and slow the
// very ingestion being measured.
func verify(ctx context.Context, vc verifyConfig, runID string, want int64, since time.Time, log zerolog.Logger) (verifyResult, error) {
	var res verifyResult
	if !chconn.Identifier(vc.database) {
		return res, fmt.Errorf("database name %q is not a plain identifier", vc.database)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{vc.addr},
		Auth:        clickhouse.Auth{Username: vc.user, Password: vc.password},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		return res, err
	}
	defer conn.Close()

	q := func(agg string) string {
		return "SELECT " + agg + " FROM " + vc.database + ".events" +
			" WHERE time >= ? AND resource_attributes['service.instance.id'] = ?"
	}
	distinctQ, rawQ := q("uniqExact(event_id)"), q("count()")
	// The tables' row counts (from their parts: no data read) bound the
	// run's: below want, the run cannot be complete, and the scan, which
	// reads every row's resource map, is not run. Scans alone, paced to a
	// sixth of the wall time, used both cores while they ran (270 ms of
	// ClickHouse's CPU a scan at 1M events): CPU taken from the ingestion
	// being measured, and the more the longer a pipeline takes.
	totalQ := "SELECT count() FROM " + vc.database + ".events"
	// Events are stamped at generation; a minute of slack covers clock steps.
	lower := since.Add(-time.Minute)
	args := []any{lower, runID}
	if vc.schema == schemaOTel {
		rows := func(table string) string {
			return "(SELECT count() FROM " + vc.database + "." + table + " WHERE Timestamp >= ? AND ResourceAttributes['service.instance.id'] = ?)"
		}
		distinctQ = "SELECT " + rows("otel_logs") + " + " + rows("otel_traces")
		rawQ = distinctQ
		totalQ = "SELECT (SELECT count() FROM " + vc.database + ".otel_logs) + (SELECT count() FROM " + vc.database + ".otel_traces)"
		args = append(args, lower, runID)
	}

	deadline := time.Now().Add(vc.timeout)
	lastLog := time.Now()
	for {
		started := time.Now()
		var total, n uint64
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := conn.QueryRow(qctx, totalQ).Scan(&total)
		scanned := time.Time{}
		if err == nil && int64(total) >= want {
			scanned = time.Now()
			res.scans++
			err = conn.QueryRow(qctx, distinctQ, args...).Scan(&n)
		}
		cancel()
		res.lastQueryTime = time.Since(started)
		switch {
		case err != nil:
			res.lastErr = err.Error()
			log.Warn().Err(err).Msg("verify query failed")
		case scanned.IsZero():
			// Not yet as many rows as the run sent.
		default:
			res.stored = n
			if int64(n) >= want {
				res.complete = true
				// The scan read a snapshot taken when it started, so the rows
				// were queryable by then.
				res.queryableAt = scanned
			}
		}
		if res.complete {
			break
		}
		if time.Since(lastLog) >= 5*time.Second {
			log.Info().Uint64("stored", res.stored).Uint64("rows_in_tables", total).Int64("want", want).Msg("waiting for ClickHouse")
			lastLog = time.Now()
		}
		if time.Now().After(deadline) {
			break
		}
		wait := time.NewTimer(pollWait(vc.interval, time.Since(started)))
		select {
		case <-ctx.Done():
			wait.Stop()
			return res, ctx.Err()
		case <-wait.C:
		}
	}
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := conn.QueryRow(qctx, rawQ, args...).Scan(&res.storedRaw); err != nil {
		return res, fmt.Errorf("counting rows: %w", err)
	}
	return res, nil
}

// procMemory reads a process's peak (VmHWM) and current (VmRSS) resident set
// in MiB. The peak covers the process's whole life, not only this run.
func procMemory(pid int) (peakMB, rssMB float64, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	found := 0
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) < 1 {
			continue
		}
		kb, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", k, err)
		}
		if k == "VmHWM" {
			peakMB = kb / 1024
		} else {
			rssMB = kb / 1024
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if found < 2 {
		return 0, 0, fmt.Errorf("VmHWM/VmRSS not in /proc/%d/status", pid)
	}
	return peakMB, rssMB, nil
}
