package store

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	c "github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/decision"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

func (s *Store) count(t *testing.T, query string) uint64 {
	t.Helper()
	var n uint64
	require.NoError(t, s.conn.QueryRow(context.Background(), fmt.Sprintf(query, s.db)).Scan(&n))
	return n
}

func (s *Store) schema(t *testing.T) map[string]string {
	t.Helper()
	rows, err := s.conn.Query(context.Background(), `SELECT name, create_table_query FROM system.tables WHERE database = ?`, s.db)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, q string
		require.NoError(t, rows.Scan(&n, &q))
		out[n] = q
	}
	return out
}

func TestIntegrationMigrationsTwiceChangeNothing(t *testing.T) {
	s := freshStore(t)
	ctx := context.Background()
	before := s.schema(t)
	for _, table := range []string{"events", "decision_rollup", "decision_rollup_mv", "decisions", "decision_summary", "watermarks", "source_polls",
		"decision_changes", "contracts", "verdicts", "decision_verdicts", "alert_state", "alert_history", "contract_sources", "contract_slos", "read_lag"} {
		assert.Contains(t, before, table)
	}
	assert.NotContains(t, before, "decisions_mv", "version 1's feed is replaced")
	assert.NotContains(t, before, "decisions_v2_mv", "version 2's feed is replaced")
	assert.NotContains(t, before, "decisions_v8_mv", "version 8's feed is replaced")
	from, to, err := s.Migrate(ctx)
	require.NoError(t, err)
	assert.Equal(t, from, to, "a second run applies nothing")
	require.NoError(t, s.ApplyTTL(ctx, 0))
	assert.Equal(t, before, s.schema(t))
	assert.Equal(t, uint64(len(migrations)), s.count(t, `SELECT count() FROM %s.schema_migrations FINAL`))
}

func TestIntegrationSchemaNewerThanBinaryIsAClearError(t *testing.T) {
	s := freshStore(t)
	ctx := context.Background()
	require.NoError(t, s.conn.Exec(ctx, "INSERT INTO "+s.db+".schema_migrations (version, name, applied_at) VALUES (999, 'from the future', now())"))
	_, _, err := s.Migrate(ctx)
	require.ErrorIs(t, err, ErrSchemaTooNew)
	assert.Contains(t, err.Error(), fmt.Sprintf("database %s is at schema version 999 but this decisiontrace knows versions up to %d", s.db, Latest()))
}

func TestIntegrationTTLChangeReachesTables(t *testing.T) {
	s := freshStore(t)
	ctx := context.Background()
	ttlOf := func(table string) string { return s.schema(t)[table] }
	require.NoError(t, s.ApplyTTL(ctx, 720*time.Hour))
	for _, tt := range ttlTables {
		assert.Contains(t, ttlOf(tt.table), "TTL toDateTime("+tt.column+") + toIntervalSecond(2592000)", tt.table)
	}
	require.NoError(t, s.ApplyTTL(ctx, 24*time.Hour))
	assert.Contains(t, ttlOf("events"), "toIntervalSecond(86400)")
	assert.Contains(t, ttlOf("verdicts"), "toIntervalSecond(86400)")
	require.NoError(t, s.ApplyTTL(ctx, 0))
	assert.NotContains(t, ttlOf("events"), "TTL")
	assert.NotContains(t, ttlOf("verdicts"), "TTL")
}

// A database that version 1 created and filled migrates forward without
// losing anything: the rollup gains its new columns for the decisions
// already stored, and verdicts are derived for them.
func TestIntegrationVersion1DatabaseMigratesForward(t *testing.T) {
	s := freshStore(t)
	ctx := context.Background()
	// Rebuild the database as version 1 left it, with version 1's TTL.
	rebuildAt(t, s, 1)
	require.NoError(t, s.conn.Exec(ctx, "INSERT INTO "+s.db+".schema_settings VALUES ('ttl_seconds', '2592000', now())"))
	// Version 1's alert tables came from the rule evaluator.
	require.NoError(t, s.conn.Exec(ctx, "CREATE TABLE "+s.db+".source_budgets (workflow String, source String, max_age_s Float64, updated_at DateTime64(3)) ENGINE = ReplacingMergeTree(updated_at) ORDER BY (workflow, source)"))
	for _, tb := range []table{alertStateTable, alertHistoryTable} {
		require.NoError(t, s.conn.Exec(ctx, Layout{}.create(s.db, tb)[0]))
	}
	require.NoError(t, s.conn.Exec(ctx, "INSERT INTO "+s.db+".alert_history (time, alertname, fingerprint, state, value, labels, annotations) VALUES (now(), 'Old', 1, 'firing', 1, map(), map())"))

	// The data is an hour old, whatever today is: the 30-day TTL applied
	// below keeps it.
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	old := newLogs()
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("old-%d", i)
		at := base.Add(time.Duration(i) * time.Second)
		old.add(output(id, at, 0.9))
		old.add(read(id, "a", at, ago(at, time.Duration(i)*10*time.Second), true))
		old.add(read(id, "b", at, ago(at, time.Minute), true))
		// version 1's processor wrote verdict records; they are events of
		// the past, not verdicts.
		old.add(at.Add(time.Second), map[string]any{c.DecisionID: id, c.DecisionWorkflow: "claims", c.DecisionLayer: c.LayerModel,
			c.DecisionEvent: c.EventVerdict, "verdict.context": "missing"})
	}
	old.add(poll("a", base, base))
	s.write(t, old)
	s.write(t, old) // version 1 deduplicated a redelivered request by its token
	eventsBefore := s.count(t, "SELECT count() FROM %s.events")
	require.Equal(t, uint64(81), eventsBefore)

	from, to, err := s.Migrate(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint32(1), from)
	assert.Equal(t, Latest(), to)
	require.NoError(t, s.ApplyTTL(ctx, 30*24*time.Hour))
	sc := s.schema(t)
	assert.Contains(t, sc["verdicts"], "toIntervalSecond(2592000)", "a table the migration added gets the TTL")
	assert.NotContains(t, sc, "source_budgets")

	assert.Equal(t, eventsBefore, s.count(t, "SELECT count() FROM %s.events"), "no event lost")
	assert.Equal(t, uint64(1), s.count(t, "SELECT count() FROM %s.alert_history"), "alert history kept")
	assert.Equal(t, uint64(20), s.count(t, "SELECT count() FROM %s.decision_summary WHERE events = 3"), "decision.verdict records are not events of the decision")
	assert.Equal(t, uint64(1), s.count(t, "SELECT count() FROM %s.source_polls"))

	require.NoError(t, s.WriteContracts(ctx, parseContract(t, claimsContract), base))
	got := s.refresh(t)
	require.Len(t, got, 20, "decisions stored before the migration are judged")
	stale := 0
	for _, v := range got {
		if v.Context == c.ContextStale {
			stale++
		}
	}
	assert.Equal(t, 10, stale, "a is over its 90s budget from the 10th decision on")

	// New events go through the new feed only: once into the rollup.
	s.write(t, newLogs().add(read("old-0", "c", base, ago(base, time.Second), true)))
	assert.Equal(t, uint64(4), s.count(t, "SELECT events FROM %s.decision_summary WHERE decision_id = 'old-0'"))
}

// A database that version 2 created moves decision_changes to version 3's
// feed: only model outputs and context reads are recorded, with their
// workflow; what version 2 recorded stays, without one.
func TestIntegrationVersion2ChangesFeedMigratesForward(t *testing.T) {
	s := freshStore(t)
	ctx := context.Background()
	rebuildAt(t, s, 2)
	before := newLogs().add(output("v2", v0, 0.9))
	s.write(t, before)

	from, to, err := s.Migrate(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint32(2), from)
	assert.Equal(t, Latest(), to)

	s.write(t, newLogs().
		add(output("v3", v0.Add(time.Minute), 0.9)).
		add(read("v3", "a", v0.Add(time.Minute), ago(v0, 0), true)))
	// Routing changes no verdict: no change recorded.
	s.write(t, newLogs().add(v0.Add(2*time.Minute), map[string]any{c.DecisionID: "v3", c.DecisionWorkflow: "claims",
		c.DecisionLayer: c.LayerWorkflow, c.DecisionEvent: c.EventWorkflowRouted, c.WorkflowRoute: "auto"}))
	rows, err := s.conn.Query(ctx, "SELECT decision_id, toString(workflow), count() FROM "+s.db+".decision_changes GROUP BY decision_id, workflow ORDER BY decision_id")
	require.NoError(t, err)
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id, wf string
		var n uint64
		require.NoError(t, rows.Scan(&id, &wf, &n))
		got = append(got, fmt.Sprintf("%s %q %d", id, wf, n))
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{`v2 "" 1`, `v3 "claims" 1`}, got, "version 2's change kept; one for the output and read, none for the routing")
}

// A database that version 3 left gains the layers' watermarks: filled
// from the events stored before, fed by every event after.
func TestIntegrationVersion3LayerWatermarksMigrateForward(t *testing.T) {
	s := freshStore(t)
	ctx := context.Background()
	rebuildAt(t, s, 3)
	human := func(at time.Time) (time.Time, map[string]any) {
		return at, map[string]any{c.DecisionID: "d", c.DecisionWorkflow: "claims", c.DecisionLayer: c.LayerHuman,
			c.DecisionEvent: c.EventHumanAction, c.HumanAction: c.ActionAccepted}
	}
	s.write(t, newLogs().add(output("d", v0, 0.9)).add(human(v0.Add(time.Minute))))

	from, to, err := s.Migrate(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint32(3), from)
	assert.Equal(t, Latest(), to)

	// One human action later, one earlier than the latest: a maximum.
	s.write(t, newLogs().add(human(v0.Add(3*time.Minute))).add(human(v0.Add(-time.Hour))))
	rows, err := s.conn.Query(ctx, "SELECT workflow, source, max(until) FROM "+s.db+".watermarks WHERE stream = 'layers' GROUP BY workflow, source ORDER BY source")
	require.NoError(t, err)
	defer rows.Close()
	var got []string
	for rows.Next() {
		var wf, layer string
		var until time.Time
		require.NoError(t, rows.Scan(&wf, &layer, &until))
		got = append(got, fmt.Sprintf("%s %s %s", wf, layer, until.Sub(v0)))
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []string{"claims human 3m0s", "claims model 0s"}, got)
}

// rebuildAt recreates the store's database as the first n migrations left
// it.
// A database that version 7 left loses the rollup's latest-value columns
// and keeps every answer of decision_summary: the summary of decisions
// stored before is the same after the migration, and events stored after
// it move the latest values and the counts as before, a resent event
// counted once.
// A database that version 9 left keeps each model output's decision hash
// from version 10 on: the outputs stored before have it (computed when
// read, kept once merged) as the outputs stored after do, the same
// cityHash64 of the ID that the rules group events by.
func TestIntegrationVersion9OutputsGainTheirDecisionHash(t *testing.T) {
	s := freshStore(t)
	ctx := context.Background()
	rebuildAt(t, s, 9)
	s.write(t, newLogs().add(output("before-1", v0, 0.9)).add(output("before-2", v0.Add(time.Second), 0.8)))

	from, to, err := s.Migrate(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint32(9), from)
	assert.Equal(t, Latest(), to)
	s.write(t, newLogs().add(output("after", v0.Add(time.Minute), 0.7)))

	hashes := func() map[string]bool {
		rows, err := s.conn.Query(ctx, "SELECT decision_id, decision_hash = cityHash64(decision_id) FROM "+s.db+".model_outputs ORDER BY decision_id")
		require.NoError(t, err)
		defer rows.Close()
		out := map[string]bool{}
		for rows.Next() {
			var id string
			var same bool
			require.NoError(t, rows.Scan(&id, &same))
			out[id] = same
		}
		require.NoError(t, rows.Err())
		return out
	}
	want := map[string]bool{"before-1": true, "before-2": true, "after": true}
	assert.Equal(t, want, hashes())
	require.NoError(t, s.conn.Exec(ctx, "OPTIMIZE TABLE "+s.db+".model_outputs FINAL"))
	assert.Equal(t, want, hashes(), "once merged")
	assert.Contains(t, s.schema(t)["model_outputs"], "`decision_hash` UInt64 MATERIALIZED cityHash64(decision_id)")
}

func TestIntegrationVersion10EventsGainAnIndexOfEventNames(t *testing.T) {
	s := freshStore(t)
	ctx := context.Background()
	rebuildAt(t, s, 10)
	s.write(t, newLogs().add(output("before", v0, 0.9)))

	from, to, err := s.Migrate(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint32(10), from)
	assert.Equal(t, Latest(), to)
	assert.Contains(t, s.schema(t)["events"], "INDEX idx_event event TYPE set(64) GRANULARITY 1")

	// Four granules of model outputs, two outcomes, and an outcome a
	// producer labelled with the model layer (each insert a part): a
	// filter on the event finds all three outcomes, and skips the
	// granules that hold none, which the sort key alone cannot.
	const granule = 8192
	insert := func(n int, layer, event, prefix string) {
		require.NoError(t, s.conn.Exec(ctx, `INSERT INTO `+s.db+`.events (time, event_id, decision_id, workflow, layer, event)
SELECT toDateTime64(?, 9) + toIntervalMillisecond(number), cityHash64(?, number), concat(?, toString(number)), 'claims', ?, ?
FROM numbers(?)`, v0.Format("2006-01-02 15:04:05"), prefix, prefix, layer, event, n))
	}
	insert(4*granule, c.LayerModel, c.EventModelOutput, "o-")
	insert(2, c.LayerBusiness, c.EventBusinessOutcome, "b-")
	insert(1, c.LayerModel, c.EventBusinessOutcome, "m-")
	var n uint64
	require.NoError(t, s.conn.QueryRow(ctx, "SELECT count() FROM "+s.db+".events WHERE event = ?", c.EventBusinessOutcome).Scan(&n))
	assert.Equal(t, uint64(3), n)

	// The plan says what the index kept: the granules of the filter
	// that may hold an outcome, of those the primary key selected.
	rows, err := s.conn.Query(ctx, "EXPLAIN indexes = 1 SELECT count() FROM "+s.db+".events WHERE event = ?", c.EventBusinessOutcome)
	require.NoError(t, err)
	var plan []string
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		plan = append(plan, strings.TrimSpace(line))
	}
	require.NoError(t, rows.Err())
	kept, of := -1, -1
	for i, line := range plan {
		if line != "Name: idx_event" {
			continue
		}
		for _, next := range plan[i+1:] {
			if _, err := fmt.Sscanf(next, "Granules: %d/%d", &kept, &of); err == nil {
				break
			}
		}
	}
	require.Positive(t, of, "idx_event in the plan:\n%s", strings.Join(plan, "\n"))
	var version string
	require.NoError(t, s.conn.QueryRow(ctx, "SELECT version()").Scan(&version))
	if skipsLowCardinalitySets(version) {
		assert.Equal(t, of-4, kept, "granules kept of %d: the four of model outputs skipped", of)
	} else {
		assert.LessOrEqual(t, kept, of)
	}
}

// skipsLowCardinalitySets says whether a server's set indexes skip
// granules of a LowCardinality column: ClickHouse/ClickHouse#107881 made
// them keep every granule (answers unchanged, nothing skipped), fixed in
// 26.6 and 26.5.4, 26.4.5, 26.3.16. The oldest engine the suite runs,
// 26.5.0, has the bug; the default one does not.
func skipsLowCardinalitySets(version string) bool {
	var major, minor, patch int
	if _, err := fmt.Sscanf(version, "%d.%d.%d", &major, &minor, &patch); err != nil {
		return false
	}
	switch {
	case major == 25:
		return false // 25.8 got the bug and its fix in patches
	case major != 26 || minor >= 6:
		return true
	case minor == 5:
		return patch >= 4
	case minor == 4:
		return patch >= 5
	case minor == 3:
		return patch >= 16
	}
	return true
}

// summaries is every decision_summary row, as text, by decision.
func (s *Store) summaries(t *testing.T) []string {
	t.Helper()
	rows, err := s.conn.Query(context.Background(), "SELECT decision_id, workflow, first_seen, last_seen, layers_seen, events, model_name, model_version, confidence, "+
		"recommendation, route, queue, human_action, human_actor, outcome, cycle_time_s, business_cost, decision_time FROM "+s.db+".decision_summary ORDER BY decision_id")
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var (
			id, wf                   string
			first, last              time.Time
			layers                   []string
			events                   uint64
			model, version, reco     *string
			route, queue, act, actor *string
			outcome                  *string
			conf, cycle, cost        *float64
			decided                  *time.Time
		)
		require.NoError(t, rows.Scan(&id, &wf, &first, &last, &layers, &events, &model, &version, &conf, &reco, &route, &queue, &act, &actor, &outcome, &cycle, &cost, &decided))
		str := func(p *string) string {
			if p == nil {
				return "NULL"
			}
			return *p
		}
		num := func(p *float64) string {
			if p == nil {
				return "NULL"
			}
			return fmt.Sprint(*p)
		}
		out = append(out, fmt.Sprintf("%s %s %s %s %v %d %s %s %s %s %s %s %s %s %s %s %s %v", id, wf, first.UTC().Format(time.RFC3339Nano), last.UTC().Format(time.RFC3339Nano),
			layers, events, str(model), str(version), num(conf), str(reco), str(route), str(queue), str(act), str(actor), str(outcome), num(cycle), num(cost), decided != nil))
	}
	require.NoError(t, rows.Err())
	return out
}

func TestIntegrationVersion7RollupMigratesForward(t *testing.T) {
	s := freshStore(t)
	ctx := context.Background()
	rebuildAt(t, s, 7)
	at := func(d time.Duration) time.Time { return v0.Add(d) }
	ev := func(id string, d time.Duration, layer, event string, kv ...any) (time.Time, map[string]any) {
		a := map[string]any{c.DecisionID: id, c.DecisionWorkflow: "claims", c.DecisionLayer: layer, c.DecisionEvent: event}
		for i := 0; i+1 < len(kv); i += 2 {
			a[kv[i].(string)] = kv[i+1]
		}
		return at(d), a
	}
	before := newLogs().
		add(output("m", at(0), 0.9)).
		add(read("m", "a", at(0), ago(at(0), time.Second), true)).
		add(ev("m", time.Second, c.LayerWorkflow, c.EventWorkflowRouted, c.WorkflowRoute, "manual", c.WorkflowQueue, "review")).
		add(ev("m", time.Minute, c.LayerHuman, c.EventHumanAction, c.HumanAction, c.ActionOverridden, c.HumanActor, "ana")).
		// An earlier action, stored later, is not the latest.
		add(ev("m", 30*time.Second, c.LayerHuman, c.EventHumanAction, c.HumanAction, c.ActionAccepted, c.HumanActor, "bo")).
		add(ev("m", time.Hour, c.LayerBusiness, c.EventBusinessOutcome, c.BusinessOutcome, "paid", c.BusinessCost, 120.5, c.BusinessCycleTimeS, 3600.0)).
		add(output("n", at(2*time.Second), 0.4))
	s.write(t, before)
	want := s.summaries(t)
	require.Len(t, want, 2)
	assert.Contains(t, want[0], "overridden ana paid 3600 120.5", "version 7's summary: the latest human action in event time, the outcome")

	from, to, err := s.Migrate(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint32(7), from)
	assert.Equal(t, Latest(), to)
	assert.Equal(t, want, s.summaries(t), "decision_summary answers as before for the decisions stored before")
	assert.NotContains(t, s.schema(t)["decision_rollup"], "latest_", "the rollup's latest-value columns are gone")

	// After the migration, once into the rollup; the latest values move
	// with the events; a resent event is counted once.
	later := newLogs().
		add(ev("m", 2*time.Hour, c.LayerHuman, c.EventHumanAction, c.HumanAction, c.ActionAccepted, c.HumanActor, "cy")).
		add(ev("n", 3*time.Second, c.LayerWorkflow, c.EventWorkflowRouted, c.WorkflowRoute, "auto"))
	s.write(t, later)
	s.write(t, later) // a redelivered request
	after := s.summaries(t)
	assert.Contains(t, after[0], "m claims "+v0.Format(time.RFC3339Nano)+" "+at(2*time.Hour).Format(time.RFC3339Nano)+" [data model workflow human business] 7 triage v1 0.9 NULL manual review accepted cy paid 3600 120.5 true")
	assert.Contains(t, after[1], "n claims "+at(2*time.Second).Format(time.RFC3339Nano)+" "+at(3*time.Second).Format(time.RFC3339Nano)+" [model workflow] 2 triage v1 0.4 NULL auto NULL NULL NULL NULL NULL NULL true")
}

func rebuildAt(t *testing.T, s *Store, n int) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, s.conn.Exec(ctx, "DROP DATABASE "+s.db+" SYNC"))
	for _, stmt := range bootstrap(Layout{}, s.db) {
		require.NoError(t, s.conn.Exec(ctx, stmt))
	}
	for _, m := range migrations[:n] {
		for _, stmt := range m.statements(Layout{}, s.db) {
			require.NoError(t, s.conn.Exec(ctx, stmt), "%s", stmt)
		}
		require.NoError(t, s.conn.Exec(ctx, "INSERT INTO "+s.db+".schema_migrations VALUES (?, ?, now())", m.version, m.name))
	}
	// The events "stored before" are written by this binary, which fills
	// every column decision.Fields has: the columns later migrations add
	// are added here, as the old rows have them (empty) once migrated; the
	// migrations' own ADD COLUMN IF NOT EXISTS then changes nothing.
	for _, f := range decision.StoredFields {
		require.NoError(t, s.conn.Exec(ctx, "ALTER TABLE "+s.db+".events ADD COLUMN IF NOT EXISTS "+f.Column+" "+f.Type))
	}
}

// TestIntegrationInsertColumnsMatchTheEventsTable holds decision.Fields to
// the events table the migrations create: every insert column exists, each
// convention's column has the type its field declares, and every column
// left out of the insert is one that version 1 wrote and the store no
// longer does.
func TestIntegrationInsertColumnsMatchTheEventsTable(t *testing.T) {
	s := freshStore(t)
	rows, err := s.conn.Query(context.Background(), `SELECT name, type FROM system.columns WHERE database = ? AND table = 'events'`, s.db)
	require.NoError(t, err)
	defer rows.Close()
	table := map[string]string{}
	for rows.Next() {
		var n, typ string
		require.NoError(t, rows.Scan(&n, &typ))
		table[n] = typ
	}
	require.NoError(t, rows.Err())

	for _, col := range insertColumns {
		assert.Contains(t, table, col, "insert column %s is not in the events table", col)
	}
	for _, f := range decision.StoredFields {
		assert.Equal(t, f.Type, table[f.Column], "column %s of %s", f.Column, f.Key)
	}
	inserted := map[string]bool{}
	for _, col := range insertColumns {
		inserted[col] = true
	}
	var left []string
	for col := range table {
		if !inserted[col] {
			left = append(left, col)
		}
	}
	sort.Strings(left)
	assert.Equal(t, []string{"verdict_behaviour", "verdict_confidence_low", "verdict_context", "verdict_missing_sources",
		"verdict_stale_age_s", "verdict_stale_budget_s", "verdict_stale_source", "verdict_stale_sources", "verdict_unsupported"}, left,
		"the events columns no insert fills: version 1's verdicts, which the store now derives")
}

// An evaluator's score of an output (model.evaluation) is no sign of the
// model layer deciding: an evaluator that scores old outputs later does
// not move the layer's watermark, which layer silence measures from.
func TestIntegrationEvaluationsLeaveTheModelWatermark(t *testing.T) {
	s := freshStore(t)
	eval := func(at time.Time) (time.Time, map[string]any) {
		return at, map[string]any{c.DecisionID: "d", c.DecisionWorkflow: "claims", c.GenAIEvaluationName: "groundedness",
			c.GenAIEvaluationScoreValue: 0.4}
	}
	s.write(t, newLogs().add(output("d", v0, 0.9)).add(eval(v0.Add(time.Hour))))
	var until time.Time
	require.NoError(t, s.conn.QueryRow(context.Background(), "SELECT max(until) FROM "+s.db+
		".watermarks WHERE stream = 'layers' AND workflow = 'claims' AND source = 'model'").Scan(&until))
	assert.True(t, v0.Equal(until), "model layer watermark %s, want the output's %s", until, v0)
	assert.Equal(t, uint64(1), s.count(t, `SELECT count() FROM %s.events WHERE event = 'model.evaluation' AND evaluation_score = 0.4 AND layer = 'model'`))
}

// TestIntegrationVersion11RollupMovesToFinerGranules: version 12 moves the
// rollup into decision_rollup (256-row granules) while the summary, the
// verdicts and the timeline bounds answer as before; decisions stays a
// name that reads it; the feed goes on into the new table; and the
// migration run again (a crash before it was recorded) changes nothing.
func TestIntegrationVersion11RollupMovesToFinerGranules(t *testing.T) {
	s := freshStore(t)
	ctx := context.Background()
	rebuildAt(t, s, 11)
	require.NoError(t, s.WriteContracts(ctx, parseContract(t, claimsContract), v0))
	at := func(d time.Duration) time.Time { return v0.Add(d) }
	s.write(t, newLogs().
		add(output("m", at(time.Second), 0.9)).
		add(read("m", "a", at(time.Second), ago(at(time.Second), 5*time.Minute), true)). // stale: budget 90s
		add(read("m", "b", at(time.Second), ago(at(time.Second), time.Minute), true)).
		add(output("n", at(2*time.Second), 0.4)).
		add(read("n", "a", at(2*time.Second), nil, false)))
	type answer struct {
		summary  []string
		verdicts map[string]Verdict
		bounds   string
	}
	answers := func(rollup string) answer {
		var a answer
		a.summary = s.summaries(t)
		a.verdicts = s.live(t)
		var first, last time.Time
		require.NoError(t, s.conn.QueryRow(ctx, "SELECT min(first_seen), max(last_seen) FROM "+s.db+"."+rollup+" WHERE decision_id = 'm'").Scan(&first, &last))
		a.bounds = first.UTC().Format(time.RFC3339Nano) + " " + last.UTC().Format(time.RFC3339Nano)
		return a
	}
	want := answers("decisions")
	require.Len(t, want.summary, 2)
	require.Equal(t, c.ContextStale, want.verdicts["m"].Context, "version 11 judges m's context stale")
	require.Equal(t, c.ContextMissing, want.verdicts["n"].Context, "version 11 judges n's context missing")

	from, to, err := s.Migrate(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint32(11), from)
	assert.Equal(t, Latest(), to)
	schema := s.schema(t)
	assert.Contains(t, schema["decision_rollup"], "index_granularity = 256")
	assert.Contains(t, schema["decisions"], "CREATE VIEW", "decisions reads the new rollup")
	assert.NotContains(t, schema, "decisions_v8_mv", "the old feed is gone")
	assert.Equal(t, want, answers("decision_rollup"), "the summary, the verdicts and the timeline bounds answer as before")
	assert.Equal(t, want.bounds, answers("decisions").bounds, "decisions still answers")

	// The feed goes on into the new rollup: n's read of b, once, though
	// its request was delivered twice.
	later := newLogs().add(read("n", "b", at(3*time.Second), ago(at(3*time.Second), time.Second), true))
	s.write(t, later)
	s.write(t, later)
	after := answers("decision_rollup")
	assert.Equal(t, want.summary[0], after.summary[0])
	assert.Equal(t, "n claims "+at(2*time.Second).Format(time.RFC3339Nano)+" "+at(3*time.Second).Format(time.RFC3339Nano)+" [data model] 3 triage v1 0.4 NULL NULL NULL NULL NULL NULL NULL NULL true", after.summary[1])
	assert.Equal(t, []string{"a"}, after.verdicts["n"].MissingSources, "b's read reached the verdict; a is still missing")

	// A crash after the last statement, before the record: run again.
	for _, stmt := range migrations[len(migrations)-1].statements(Layout{}, s.db) {
		require.NoError(t, s.conn.Exec(ctx, stmt), "%s", stmt)
	}
	assert.Equal(t, after, answers("decision_rollup"), "the migration run again changes no answer")
}

// Migrations of one database in one process take turns: the second finds
// the first's work done instead of copying a table again beside it.
func TestIntegrationMigrationsOfOneDatabaseTakeTurns(t *testing.T) {
	s := freshStore(t)
	sem, _ := migrating.LoadOrStore(s.db, make(chan struct{}, 1))
	sem.(chan struct{}) <- struct{}{} // another migration of this process is running
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, _, err := s.Migrate(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "migrate schema of database "+s.db+": waiting for this process's other migration")
	<-sem.(chan struct{})
	from, to, err := s.Migrate(context.Background())
	require.NoError(t, err)
	assert.Equal(t, Latest(), from)
	assert.Equal(t, Latest(), to)
}

// Version 12's copy waits for inserts into events that may have begun
// before its new feed: it sees them running.
func TestIntegrationCopyWaitsForRunningInserts(t *testing.T) {
	s := freshStore(t)
	ctx := context.Background()
	var version string
	require.NoError(t, s.conn.QueryRow(ctx, "SELECT version()").Scan(&version))
	var major, minor int
	// An unreadable version must fail, not skip.
	_, err := fmt.Sscanf(version, "%d.%d", &major, &minor)
	require.NoError(t, err, "version %q", version)
	if os.Getenv(testenv.AddrEnv) == "" && (major < 26 || (major == 26 && minor < 7)) {
		t.Skipf("the embedded engine before 26.7 (%s) is served by internal/chlocal's bridge, one query at a time: no insert can be seen running beside another query", version)
	}
	running := func() uint64 {
		var n uint64
		require.NoError(t, s.conn.QueryRow(ctx, Layout{}.runningInserts(s.db, "events")).Scan(&n))
		return n
	}
	assert.Zero(t, running())
	done := make(chan error, 1)
	go func() {
		// An insert that takes 2 s: one row, after a pause.
		done <- s.conn.Exec(ctx, "INSERT INTO "+s.db+".events (time, observed_time, event_id, decision_id) SELECT now64(9), now64(9), sleep(2), 'slow' FROM numbers(1)")
	}()
	require.Eventually(t, func() bool { return running() == 1 }, 2*time.Second, 20*time.Millisecond, "the slow insert is seen running")
	require.NoError(t, <-done)
	// The server lists a query until it has finished it, a moment after
	// the client has its answer.
	assert.Eventually(t, func() bool { return running() == 0 }, 2*time.Second, 20*time.Millisecond, "the insert is no longer seen running")
}
