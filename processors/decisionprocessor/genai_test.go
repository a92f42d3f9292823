package decisionprocessor

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Fixture traces as GenAI instrumentation records one request, with no
// decision.* attribute anywhere: each helper appends one span of trace to
// rs, with the published conventions' attribute names.

func fixtureSpan(rs ptrace.ResourceSpans, trace pcommon.TraceID, span byte, name string, at time.Time, attrs map[string]any) {
	sp := rs.ScopeSpans().At(0).Spans().AppendEmpty()
	sp.SetTraceID(trace)
	sp.SetSpanID(pcommon.SpanID{span})
	sp.SetName(name)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(300 * time.Millisecond)))
	if err := sp.Attributes().FromRaw(attrs); err != nil {
		panic(err)
	}
}

func resourceSpans(td ptrace.Traces, resource map[string]any, scope string) ptrace.ResourceSpans {
	rs := td.ResourceSpans().AppendEmpty()
	if err := rs.Resource().Attributes().FromRaw(resource); err != nil {
		panic(err)
	}
	rs.ScopeSpans().AppendEmpty().Scope().SetName(scope)
	return rs
}

// openLLMetryRequest is one request of an app instrumented by OpenLLMetry
// (Traceloop): the workflow span, a retrieval from a knowledge base, and
// the chat completion, each with traceloop.workflow.name; the GenAI names
// in their deprecated forms (gen_ai.system, gen_ai.usage.prompt_tokens).
func openLLMetryRequest(td ptrace.Traces, trace pcommon.TraceID, at time.Time) {
	rs := resourceSpans(td, map[string]any{"service.name": "support-bot"}, "opentelemetry.instrumentation.openai.v1")
	fixtureSpan(rs, trace, 1, "support_answer.workflow", at, map[string]any{
		"traceloop.span.kind": "workflow", "traceloop.workflow.name": "support-rag", "traceloop.entity.name": "support_answer",
	})
	fixtureSpan(rs, trace, 2, "retrieval policy-kb", at.Add(100*time.Millisecond), map[string]any{
		"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "policy-kb", "traceloop.workflow.name": "support-rag",
	})
	fixtureSpan(rs, trace, 3, "openai.chat", at.Add(500*time.Millisecond), map[string]any{
		"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
		"gen_ai.usage.prompt_tokens": 812, "gen_ai.usage.completion_tokens": 96, "llm.request.type": "chat",
		"traceloop.workflow.name": "support-rag",
	})
}

// openInferenceRequest is one request of an app instrumented by
// OpenInference (Arize): a RETRIEVER span and an LLM span; the workflow
// comes from the service's resource (OTEL_RESOURCE_ATTRIBUTES), as
// OpenInference names none.
func openInferenceRequest(td ptrace.Traces, trace pcommon.TraceID, at time.Time) {
	rs := resourceSpans(td, map[string]any{"service.name": "claims-assistant", "decision.workflow": "claims-rag"}, "openinference.instrumentation.langchain")
	fixtureSpan(rs, trace, 1, "VectorStoreRetriever", at, map[string]any{
		"openinference.span.kind": "RETRIEVER", "input.value": "is water damage covered?",
		"retrieval.documents.0.document.id": "pol-77", "retrieval.documents.0.document.score": 0.82,
	})
	fixtureSpan(rs, trace, 2, "ChatAnthropic", at.Add(400*time.Millisecond), map[string]any{
		"openinference.span.kind": "LLM", "llm.model_name": "claude-sonnet-4", "llm.provider": "anthropic",
		"llm.token_count.prompt": 1200, "llm.token_count.completion": 150, "session.id": "sess-9",
	})
}

func traceID(b byte) pcommon.TraceID {
	return pcommon.TraceID{0xab, b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
}

// GenAI-instrumented applications work unchanged: OpenLLMetry and
// OpenInference traces, without a decision.* attribute, become decisions
// (one per trace, with decision_id_from_trace_id) with a model output and
// a context read, judged against their workflow's contract.
func TestIntegrationGenAITracesBecomeJudgedDecisions(t *testing.T) {
	r := newStoreRig(t, func(c *Config) { c.DecisionIDFromTraceID = true })
	dir := t.TempDir()
	for name, body := range map[string]string{
		"support-rag.yaml": "workflow: support-rag\nowner: support-platform\nsources:\n  required:\n    - {name: policy-kb, owner: kb-team, max_age: 1h}\n",
		"claims-rag.yaml":  "workflow: claims-rag\nowner: claims-platform\nsources:\n  required:\n    - {name: policy-kb, owner: kb-team, max_age: 1h}\n",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600))
	}
	r.store.Contracts(t, t0.Add(-24*time.Hour), filepath.Join(dir, "support-rag.yaml"), filepath.Join(dir, "claims-rag.yaml"))

	// The platform, not the app, tells how old the knowledge base is: the
	// source freshness receiver polls it (a read's age, without as_of, is
	// its source's polled age at the decision).
	require.NoError(t, r.logs.ConsumeLogs(context.Background(), logRecord(t0.Add(-time.Minute), map[string]any{
		"decision.layer": "data", "decision.event": "source.freshness", "data.source": "policy-kb",
		"data.as_of": t0.Add(-20 * time.Minute).Format(time.RFC3339), "data.available": true,
	})))
	td := ptrace.NewTraces()
	openLLMetryRequest(td, traceID(1), t0)
	openInferenceRequest(td, traceID(2), t0)
	// Another request of claims-rag, past the contract's max_context_lag
	// (10m): what the first one never read is now missing, not pending.
	openInferenceRequest(td, traceID(3), t0.Add(11*time.Minute))
	require.NoError(t, r.traces.ConsumeTraces(context.Background(), td))
	// An evaluator scores the OpenLLMetry answer: a gen_ai.evaluation.result
	// event in the request's trace.
	eval := logRecord(t0.Add(2*time.Second), map[string]any{
		"gen_ai.evaluation.name": "groundedness", "gen_ai.evaluation.score.value": 0.35, "gen_ai.evaluation.score.label": "ungrounded",
	})
	lr := eval.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	lr.SetEventName("gen_ai.evaluation.result")
	lr.SetTraceID(traceID(1))
	lr.SetSpanID(pcommon.SpanID{3})
	require.NoError(t, r.logs.ConsumeLogs(context.Background(), eval))
	r.store.Refresh(t)

	t1, t2 := traceID(1), traceID(2)
	llmetry, inference := hex.EncodeToString(t1[:]), hex.EncodeToString(t2[:])
	type row struct{ Decision, Workflow, Layer, Event, Source, Model, Provider string }
	rows, err := r.store.Conn.Query(context.Background(), "SELECT decision_id, workflow, layer, event, source, model_name, model_provider FROM "+
		r.store.DB+".events WHERE layer IN ('data', 'model') AND event != 'model.evaluation' AND decision_id IN (?, ?) ORDER BY decision_id, layer", llmetry, inference)
	require.NoError(t, err)
	var got []row
	for rows.Next() {
		var x row
		require.NoError(t, rows.Scan(&x.Decision, &x.Workflow, &x.Layer, &x.Event, &x.Source, &x.Model, &x.Provider))
		got = append(got, x)
	}
	require.NoError(t, rows.Err())
	rows.Close()
	assert.ElementsMatch(t, []row{
		{llmetry, "support-rag", "data", "context.read", "policy-kb", "", ""},
		{llmetry, "support-rag", "model", "model.output", "", "gpt-4o", "openai"},
		{inference, "claims-rag", "data", "context.read", "", "", ""},
		{inference, "claims-rag", "model", "model.output", "", "claude-sonnet-4", "anthropic"},
	}, got)
	tokens := r.store.IDs(t, "SELECT toString(assumeNotNull(input_tokens)) || '/' || toString(assumeNotNull(output_tokens)) FROM {db}.events WHERE event = 'model.output' AND decision_id IN (?, ?) ORDER BY decision_id", llmetry, inference)
	assert.Equal(t, []string{"812/96", "1200/150"}, tokens, "deprecated GenAI and OpenInference token counts")
	evals := r.store.IDs(t, "SELECT decision_id || ' ' || evaluation_name || ' ' || toString(assumeNotNull(evaluation_score)) || ' ' || evaluation_label FROM {db}.events WHERE layer = 'model' AND event = 'model.evaluation'")
	assert.Equal(t, []string{llmetry + " groundedness 0.35 ungrounded"}, evals, "the evaluation scores the request's decision")

	verdicts := r.store.Verdicts(t)
	require.Contains(t, verdicts, llmetry)
	require.Contains(t, verdicts, inference)
	// The retrieval named policy-kb, the source the contract requires, and
	// its poll found it 19 minutes old at the decision: within its hour.
	v := verdicts[llmetry]
	assert.Equal(t, "support-rag", v.Workflow)
	assert.Equal(t, "gpt-4o", v.ModelName)
	assert.True(t, t0.Add(500*time.Millisecond).Equal(v.DecisionTime), "the model output's own time: %s", v.DecisionTime)
	assert.Equal(t, "fresh", v.Context)
	assert.Empty(t, v.MissingSources)
	// OpenInference's retriever names no source: the required one is
	// missing once the workflow has moved on past max_context_lag.
	v = verdicts[inference]
	assert.Equal(t, "claims-rag", v.Workflow)
	assert.Equal(t, "missing", v.Context)
	assert.Equal(t, []string{"policy-kb"}, v.MissingSources)
}

// decision_id_from_trace_id gives a decision signal without decision.id
// its trace's ID; a record with its own keeps it, a source's freshness or
// a queue's depth (shared by many decisions) gets none, and without the
// setting nothing is given.
func TestDecisionIDFromTraceID(t *testing.T) {
	spans := func() ptrace.Traces {
		td := ptrace.NewTraces()
		rs := resourceSpans(td, map[string]any{"service.name": "s"}, "s")
		fixtureSpan(rs, traceID(7), 1, "llm", t0, map[string]any{"gen_ai.request.model": "m"})
		fixtureSpan(rs, traceID(7), 2, "own", t0, map[string]any{"gen_ai.request.model": "m", "decision.id": "mine"})
		fixtureSpan(rs, traceID(7), 3, "poll", t0, map[string]any{"decision.event": "source.freshness", "data.source": "kb"})
		fixtureSpan(rs, traceID(7), 4, "http", t0, map[string]any{"http.route": "/x"})
		return td
	}
	ids := func(td ptrace.Traces) []any {
		var out []any
		for _, sp := range td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().All() {
			v, ok := sp.Attributes().Get("decision.id")
			if !ok {
				out = append(out, nil)
				continue
			}
			out = append(out, v.Str())
		}
		return out
	}
	tid := traceID(7)
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprint(on), func(t *testing.T) {
			p := startPipelines(t, func(c *Config) { c.DecisionIDFromTraceID = on })
			require.NoError(t, p.traces.ConsumeTraces(context.Background(), spans()))
			got := ids(p.spansSink.AllTraces()[0])
			if on {
				assert.Equal(t, []any{hex.EncodeToString(tid[:]), "mine", nil, nil}, got)
			} else {
				assert.Equal(t, []any{nil, "mine", nil, nil}, got)
			}
		})
	}
}
