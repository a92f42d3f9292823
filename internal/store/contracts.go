package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/decisiontrace/decisiontrace/internal/contract"
)

// contractsTable keeps every version of every workflow's dependency
// contract, one row per activation: the contract in force at a decision's
// time is the one with the latest effective_from at or before it. A
// workflow's first contract takes effect from the beginning of time, so
// decisions stored before any contract was written are judged by it too.
// Sources are parallel arrays so that a verdict needs one row, not a join.
var contractsTable = table{
	name: "contracts",
	columns: `
    workflow String,
    contract_hash String,
    effective_from DateTime64(9),
    owner String,
    confidence_floor Float64,
    on_low_confidence LowCardinality(String),
    max_context_lag_s Float64,
    paging Map(String, String),
    source_names Array(String),
    source_required Array(Bool),
    source_owners Array(String),
    source_max_age_s Array(Float64),
    source_on_stale Array(LowCardinality(String)),
    source_on_missing Array(LowCardinality(String)),
    spec String,
    file String,
    written_at DateTime64(3)`,
	engine:  "ReplacingMergeTree(written_at)",
	tail:    "ORDER BY (workflow, effective_from, contract_hash)",
	shardBy: "cityHash64(workflow)",
}

// contractSourcesView lists the sources of the contract in force now, for
// dashboards (age against budget) and the CLI.
const contractSourcesView = `SELECT
    workflow,
    tupleElement(c, 1) AS contract_hash,
    tupleElement(c, 2) AS effective_from,
    tupleElement(src, 1) AS source,
    tupleElement(src, 2) AS required,
    tupleElement(src, 3) AS owner,
    tupleElement(src, 4) AS max_age_s,
    tupleElement(src, 5) AS on_stale,
    tupleElement(src, 6) AS on_missing
FROM (
    SELECT workflow, argMax(tuple(contract_hash, effective_from, source_names, source_required, source_owners, source_max_age_s, source_on_stale, source_on_missing), effective_from) AS c
    FROM {db}.contracts FINAL
    GROUP BY workflow
)
ARRAY JOIN arrayZip(tupleElement(c, 3), tupleElement(c, 4), tupleElement(c, 5), tupleElement(c, 6), tupleElement(c, 7), tupleElement(c, 8)) AS src`

// contractSLOsView lists the decision SLOs of the contract in force now,
// with the outcomes it counts as bad (for good_outcomes), for the
// dashboards' error budgets. They are read from spec, the contract as
// JSON, so a contract written before the view existed has them too.
const contractSLOsView = `SELECT
    workflow,
    tupleElement(s, 'Name') AS slo,
    tupleElement(s, 'SLI') AS sli,
    tupleElement(s, 'Objective') AS objective,
    JSONExtract(spec, 'Outcomes', 'Bad', 'Array(String)') AS bad_outcomes
FROM (
    SELECT workflow, argMax(spec, effective_from) AS spec
    FROM {db}.contracts FINAL
    GROUP BY workflow
)
ARRAY JOIN JSONExtract(spec, 'SLOs', 'Array(Tuple(Name String, SLI String, Objective Float64))') AS s`

// Hash identifies a contract's content: the same file gives the same hash
// on every collector.
func Hash(c *contract.Contract) string {
	b, _ := json.Marshal(c) // a struct of strings, numbers, maps and slices: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// WriteContracts records the contracts in force from now: a workflow whose
// contract in force already has the same content gets no new row, so every
// collector may call it at every start. now is when a changed contract
// takes effect.
func (s *Store) WriteContracts(ctx context.Context, contracts map[string]*contract.Contract, now time.Time) error {
	if len(contracts) == 0 {
		return nil
	}
	current := map[string]string{}
	rows, err := s.conn.Query(ctx, `SELECT workflow, argMax(contract_hash, effective_from) FROM `+s.db+`.contracts FINAL GROUP BY workflow`)
	if err != nil {
		return fmt.Errorf("read contracts in force: %w", err)
	}
	for rows.Next() {
		var wf, h string
		if err := rows.Scan(&wf, &h); err != nil {
			rows.Close()
			return fmt.Errorf("read contracts in force: %w", err)
		}
		current[wf] = h
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read contracts in force: %w", err)
	}
	// written_at is the server's time, as refreshes compare it with theirs.
	var written time.Time
	if err := s.conn.QueryRow(ctx, "SELECT now64(3)").Scan(&written); err != nil {
		return fmt.Errorf("write contracts: %w", err)
	}
	workflows := make([]string, 0, len(contracts))
	for wf := range contracts {
		workflows = append(workflows, wf)
	}
	sort.Strings(workflows)
	batch, err := s.conn.PrepareBatch(s.WriteContext(ctx), `INSERT INTO `+s.db+`.contracts (workflow, contract_hash, effective_from, owner, confidence_floor,
on_low_confidence, max_context_lag_s, paging, source_names, source_required, source_owners, source_max_age_s,
source_on_stale, source_on_missing, spec, file, written_at)`)
	if err != nil {
		return fmt.Errorf("write contracts: %w", err)
	}
	defer func() { _ = batch.Close() }()
	for _, wf := range workflows {
		c := contracts[wf]
		h := Hash(c)
		prev, known := current[wf]
		if known && prev == h {
			continue
		}
		effective := time.Unix(0, 0).UTC()
		if known {
			effective = now
		}
		var names, owners, onStale, onMissing []string
		var required []bool
		var maxAge []float64
		for _, list := range []struct {
			sources  []contract.Source
			required bool
		}{{c.Sources.Required, true}, {c.Sources.Optional, false}} {
			for _, src := range list.sources {
				names = append(names, src.Name)
				required = append(required, list.required)
				owners = append(owners, src.Owner)
				maxAge = append(maxAge, src.MaxAge.D().Seconds())
				onStale = append(onStale, src.OnStale)
				onMissing = append(onMissing, src.OnMissing)
			}
		}
		spec, _ := json.Marshal(c)
		paging := c.Paging
		if paging == nil {
			paging = map[string]string{}
		}
		if err := batch.Append(wf, h, effective, c.Owner, c.ConfidenceFloor, c.OnLowConfidence, c.MaxContextLag.D().Seconds(),
			paging, names, required, owners, maxAge, onStale, onMissing, string(spec), c.File, written); err != nil {
			return fmt.Errorf("write contract of %s: %w", wf, err)
		}
	}
	if batch.Rows() == 0 {
		return nil
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("write contracts: %w", err)
	}
	return nil
}
