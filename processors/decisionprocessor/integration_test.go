package decisionprocessor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/storetest"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// incident is a replay of a claims-triage day in which policy-db, a
// required source, stops updating halfway through. The generator knows, for
// every decision, what the verdict must be.
type incident struct {
	decisions, staleFrom int
	base                 time.Time
}

func (in incident) id(i int) string          { return fmt.Sprintf("claim-%04d", i) }
func (in incident) at(i int) time.Time       { return in.base.Add(time.Duration(i) * time.Second) }
func (in incident) confidence(i int) float64 { return 0.4 + float64((i*37)%60)/100 } // 0.40 .. 0.99
func (in incident) stale(i int) bool         { return i >= in.staleFrom }
func (in incident) missing(i int) bool       { return i%7 == 0 } // claims-history not read
func (in incident) outputFirst(i int) bool   { return i%3 == 0 } // context arrives after the output

func (in incident) wantUnsupported(i int) bool {
	return in.confidence(i) >= 0.7 && (in.stale(i) || in.missing(i))
}

// storeRig is the processor in front of the real decision store: logs and
// traces pipelines into the decisionstore exporter on the test ClickHouse.
type storeRig struct {
	logs   processor.Logs
	traces processor.Traces
	conn   driver.Conn
	db     string
	addr   string
}

func newStoreRig(t *testing.T, mut func(*Config)) *storeRig {
	t.Helper()
	store := storetest.New(t, "dt_proc", nil)
	r := &storeRig{db: store.DB, addr: store.Addr, conn: store.Conn}
	ctx := context.Background()
	cfg := createDefaultConfig().(*Config)
	cfg.Contracts = []string{"testdata/contracts/claims-triage.yaml"}
	if mut != nil {
		mut(cfg)
	}
	require.NoError(t, cfg.Validate())
	pset := processortest.NewNopSettings(typ)
	var err error
	r.logs, err = NewFactory().CreateLogs(ctx, pset, cfg, store.Logs)
	require.NoError(t, err)
	r.traces, err = NewFactory().CreateTraces(ctx, pset, cfg, store.Traces)
	require.NoError(t, err)
	require.NoError(t, r.logs.Start(ctx, componenttest.NewNopHost()))
	require.NoError(t, r.traces.Start(ctx, componenttest.NewNopHost()))
	// Registered after the store's: runs first, so the processors flush
	// their last verdicts into a store that is still open.
	t.Cleanup(func() {
		_ = r.logs.Shutdown(ctx)
		_ = r.traces.Shutdown(ctx)
	})
	return r
}

func (r *storeRig) count(t *testing.T, q string, args ...any) uint64 {
	t.Helper()
	var n uint64
	require.NoError(t, r.conn.QueryRow(context.Background(), fmt.Sprintf(q, r.db), args...).Scan(&n))
	return n
}

func TestIntegrationIncidentReplayVerdictsInClickHouse(t *testing.T) {
	// Long enough that a slow insert between an output and its late
	// context never closes the window early; missing-context decisions
	// wait it out.
	r := newStoreRig(t, func(c *Config) { c.VerdictWindow = 10 * time.Second })
	ctx := context.Background()
	conn, db := r.conn, r.db
	logsProc, tracesProc := r.logs, r.traces

	in := incident{decisions: 300, staleFrom: 150, base: time.Now().UTC().Add(-time.Hour).Truncate(time.Second)}
	reads := func(i int) plog.Logs {
		ld := plog.NewLogs()
		sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
		add := func(source string, asOf time.Time) {
			lr := sl.LogRecords().AppendEmpty()
			lr.SetTimestamp(pcommon.NewTimestampFromTime(in.at(i).Add(-time.Second)))
			_ = lr.Attributes().FromRaw(map[string]any{
				conventions.DecisionID: in.id(i), conventions.DecisionWorkflow: "claims-triage",
				conventions.DecisionLayer: "data", conventions.DecisionEvent: "context.read",
				conventions.DataSource: source, conventions.DataAsOf: asOf.Format(time.RFC3339Nano),
			})
		}
		policyAge := 10 * time.Second
		if in.stale(i) {
			policyAge = 30 * time.Minute // the feed stopped at staleFrom
		}
		add("policy-db", in.at(i).Add(-policyAge))
		if !in.missing(i) {
			add("claims-history", in.at(i).Add(-2*time.Minute))
		}
		return ld
	}
	output := func(i int) ptrace.Traces {
		td := ptrace.NewTraces()
		sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName("chat claims-model")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(in.at(i)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(in.at(i).Add(800 * time.Millisecond)))
		_ = sp.Attributes().FromRaw(map[string]any{
			conventions.DecisionID: in.id(i), conventions.DecisionWorkflow: "claims-triage",
			conventions.GenAIRequestModel: "claims-model", conventions.ModelVersion: "2025.11.0",
			conventions.ModelConfidence: in.confidence(i),
		})
		return td
	}
	wantUnsupported, wantMissing, wantStale := 0, 0, 0
	for i := 0; i < in.decisions; i++ {
		if in.outputFirst(i) {
			require.NoError(t, tracesProc.ConsumeTraces(ctx, output(i)))
			require.NoError(t, logsProc.ConsumeLogs(ctx, reads(i)))
		} else {
			require.NoError(t, logsProc.ConsumeLogs(ctx, reads(i)))
			require.NoError(t, tracesProc.ConsumeTraces(ctx, output(i)))
		}
		if in.wantUnsupported(i) {
			wantUnsupported++
		}
		switch {
		case in.missing(i):
			wantMissing++
		case in.stale(i):
			wantStale++
		}
	}
	require.NotZero(t, wantUnsupported)

	count := func(q string) uint64 {
		var n uint64
		require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf(q, db)).Scan(&n))
		return n
	}
	// Decisions missing claims-history wait for the window; the others were
	// decided as soon as both sides were known.
	require.Eventually(t, func() bool {
		return count("SELECT count() FROM %s.events WHERE event = 'decision.verdict'") == uint64(in.decisions)
	}, 90*time.Second, 200*time.Millisecond)

	assert.Equal(t, uint64(wantUnsupported), count("SELECT count() FROM %s.events WHERE event = 'decision.verdict' AND verdict_unsupported"))
	assert.Equal(t, uint64(wantMissing), count("SELECT count() FROM %s.events WHERE verdict_context = 'missing'"))
	assert.Equal(t, uint64(wantStale), count("SELECT count() FROM %s.events WHERE verdict_context = 'stale'"))
	// None before the incident except those with claims-history missing.
	var before uint64
	require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf(`SELECT count() FROM %s.events
		WHERE verdict_unsupported AND decision_id < ? AND verdict_context != 'missing'`, db), in.id(in.staleFrom)).Scan(&before))
	assert.Zero(t, before)

	// Every qualifying decision, by ID, and only those.
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT decision_id FROM %s.events WHERE verdict_unsupported ORDER BY decision_id", db))
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		got = append(got, id)
	}
	require.NoError(t, rows.Err())
	var want []string
	for i := 0; i < in.decisions; i++ {
		if in.wantUnsupported(i) {
			want = append(want, in.id(i))
		}
	}
	assert.Equal(t, want, got)

	// The per-decision rollup shows the verdict next to the model output.
	i := in.staleFrom + 1
	for !in.wantUnsupported(i) || in.missing(i) {
		i++
	}
	var vctx, behaviour *string
	var unsupported *bool
	var conf *float64
	require.NoError(t, conn.QueryRow(ctx, fmt.Sprintf(`SELECT verdict_context, verdict_behaviour, unsupported_certainty, confidence
		FROM %s.decision_summary WHERE decision_id = ?`, db), in.id(i)).Scan(&vctx, &behaviour, &unsupported, &conf))
	require.NotNil(t, vctx)
	assert.Equal(t, "stale", *vctx)
	assert.Equal(t, "escalate", *behaviour)
	assert.True(t, *unsupported)
	assert.InDelta(t, in.confidence(i), *conf, 1e-9)
}

// Identity reconciliation from a ClickHouse alias table: a change in the
// table takes effect without a restart, and identifiers nobody can map are
// stored marked as unresolved, so inconsistent state is measurable.
func TestIntegrationAliasTableChangeTakesEffectWithoutRestart(t *testing.T) {
	addr := testenv.ClickHouse(t)
	user, pass := testenv.ClickHouseAuth()
	ctx := context.Background()
	admin, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Username: user, Password: pass}})
	require.NoError(t, err)
	defer admin.Close()
	var b [4]byte
	_, _ = rand.Read(b[:])
	aliasDB := "dt_alias_" + hex.EncodeToString(b[:])
	require.NoError(t, admin.Exec(ctx, "CREATE DATABASE "+aliasDB))
	t.Cleanup(func() { _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+aliasDB+" SYNC") })
	require.NoError(t, admin.Exec(ctx, "CREATE TABLE "+aliasDB+".entity_aliases (system String, local_id String, canonical_id String) ENGINE = MergeTree ORDER BY (system, local_id)"))
	require.NoError(t, admin.Exec(ctx, "INSERT INTO "+aliasDB+".entity_aliases VALUES ('crm', 'C-9', 'customer-9')"))

	r := newStoreRig(t, func(c *Config) {
		c.Aliases.ClickHouse = configoptional.Some(AliasTableConfig{
			Endpoint: "clickhouse://" + addr, Username: user, Password: configopaque.String(pass), Table: aliasDB + ".entity_aliases"})
		c.Aliases.ReloadInterval = 50 * time.Millisecond
	})
	send := func(id, entity string) {
		require.NoError(t, r.logs.ConsumeLogs(ctx, contextRead(id, "policy-db", time.Now(),
			map[string]any{conventions.DataEntitySystem: "crm", conventions.DataEntityID: entity})))
	}
	require.Eventually(t, func() bool {
		send("probe", "C-9")
		return r.count(t, "SELECT count() FROM %s.events WHERE decision_id = 'probe' AND entity_canonical_id = 'customer-9'") > 0
	}, 10*time.Second, 50*time.Millisecond, "the table is read once ClickHouse answers")

	send("a1", "C-10")
	assert.Equal(t, uint64(1), r.count(t, "SELECT count() FROM %s.events WHERE decision_id = 'a1' AND entity_resolved = false AND entity_canonical_id = ''"),
		"an identifier no map knows is stored, marked unresolved")

	require.NoError(t, admin.Exec(ctx, "INSERT INTO "+aliasDB+".entity_aliases VALUES ('crm', 'C-10', 'customer-10')"))
	require.Eventually(t, func() bool {
		send("a2", "C-10")
		return r.count(t, "SELECT count() FROM %s.events WHERE decision_id = 'a2' AND entity_resolved AND entity_canonical_id = 'customer-10'") > 0
	}, 10*time.Second, 50*time.Millisecond, "the new alias applies without a restart")
}
