package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/decisiontrace/decisiontrace/internal/amtest"
	"github.com/decisiontrace/decisiontrace/internal/conventions"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// TestIntegrationOnlyKnownWorkflowsPage: a rule without a workflow filter
// (queue depth over 100) and queues over it in claims-triage, which has a
// contract, and in workflows a producer invented: a SQL injection, a NUL,
// a terminal escape, invalid UTF-8. Through the collector as shipped
// (unknown_workflows: tag) and a real Alertmanager, only claims-triage
// pages; the invented ones are stored, tagged, and their names escaped the
// same way whether they came over OTLP or the decision-events endpoint.
func TestIntegrationOnlyKnownWorkflowsPage(t *testing.T) {
	addr := testenv.ClickHouse(t)
	db := testenv.Database(t, addr, "dt_known")
	s := storeOf(t, addr, db)
	am, hook := amtest.StartNotifying(t)
	dir := t.TempDir()
	env := collectorConfig(t, dir, addr, db, true, am.URL())
	rulesFile := filepath.Join(dir, "rules.yaml")
	require.NoError(t, os.WriteFile(rulesFile, []byte(`
groups:
  - name: queues
    interval: 1s
    rules:
      - alert: AnyQueueDeep
        kind: queue_depth
        max_depth: 100
        labels: {severity: page}
`), 0o600))
	eventsPort := testenv.FreePort(t)
	runCollector(t, env.configPath, overlay(t, dir, fmt.Sprintf(`
receivers:
  alertrules:
    rule_files: [%[1]q]
  decisionevents:
    endpoint: 127.0.0.1:%[2]d
processors:
  decision:
    unknown_workflows: tag
    known_workflows:
      contracts: ["%[3]s/deploy/contracts/*.yaml"]
service:
  pipelines:
    logs:
      receivers: [otlp, decisionevents]
`, rulesFile, eventsPort, repoRoot)))

	now := time.Now().UTC()
	invented := []string{"x' OR 1=1 --", "nul\x00name", "esc\x1b]0;pwned\x07", "bad\xffutf8"}
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, wf := range append([]string{"claims-triage"}, invented...) {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
		require.NoError(t, lr.Attributes().FromRaw(map[string]any{conventions.DecisionWorkflow: wf, conventions.DecisionLayer: "workflow",
			conventions.DecisionEvent: "queue.depth", conventions.WorkflowQueue: "otlp", conventions.WorkflowQueueDepth: int64(500)}))
	}
	send(t, env.httpPort, ld)
	// The same names over the decision-events endpoint: JSON text must be
	// UTF-8, so there the invalid byte is refused (with where), and the
	// valid events of the request are kept.
	var events []string
	for _, wf := range invented {
		events = append(events, fmt.Sprintf(`{"decision.workflow":%s,"decision.event":"queue.depth","workflow.queue":"events","workflow.queue.depth":500,"time":%q}`,
			jsonString(wf), now.Format(time.RFC3339Nano)))
	}
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/decision-events", eventsPort), "application/json",
		strings.NewReader("["+strings.Join(events, ",")+"]"))
	require.NoError(t, err)
	body := readAll(t, resp)
	require.Contains(t, body, "invalid UTF-8", "the invalid byte is named: %s", body)
	settle(t, s, len(invented)+1+len(invented)-1)

	require.Eventually(t, func() bool { return len(hook.Notifications(t, "AnyQueueDeep")) > 0 },
		time.Minute, time.Second, "the contracted workflow's deep queue pages")
	// A few more rounds (one a second) for anything invented to page.
	time.Sleep(5 * time.Second)
	var paged []string
	for _, n := range hook.Notifications(t, "") {
		paged = append(paged, n.Labels["alertname"]+" "+n.Labels["workflow"]+" "+n.Status)
	}
	assert.Equal(t, []string{"AnyQueueDeep claims-triage firing"}, paged, "only the workflow with a contract pages")

	rows, err := s.Conn().Query(context.Background(), "SELECT workflow, queue, attributes['"+conventions.DecisionWorkflowUnknown+"'] FROM "+db+".events ORDER BY workflow, queue")
	require.NoError(t, err)
	var stored []string
	for rows.Next() {
		var wf, queue, unknown string
		require.NoError(t, rows.Scan(&wf, &queue, &unknown))
		stored = append(stored, fmt.Sprintf("%s|%s|%s", wf, queue, unknown))
	}
	require.NoError(t, rows.Err())
	sort.Strings(stored)
	assert.Equal(t, []string{
		`bad\xffutf8|otlp|true`,
		`claims-triage|otlp|`,
		`esc\x1b]0;pwned\x07|events|true`,
		`esc\x1b]0;pwned\x07|otlp|true`,
		`nul\x00name|events|true`,
		`nul\x00name|otlp|true`,
		`x' OR 1=1 --|events|true`,
		`x' OR 1=1 --|otlp|true`,
	}, stored, "escaped the same way on both paths; unknown workflows tagged")
}

// jsonString quotes s as JSON text, its control characters as \u escapes
// and any invalid UTF-8 byte left raw, as a careless producer would send it.
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}
