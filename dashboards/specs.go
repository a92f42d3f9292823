package dashboards

import "strings"

// The five layers in their order, for sorting.
const layerOrder = "indexOf(['data', 'model', 'workflow', 'human', 'business'], layer)"

// How the panels count, so that a producer that resends its requests
// changes no number: a resent request lands duplicate rows in events (the
// same event_id, in other inserts), so a panel over events counts distinct
// event IDs or decisions (uniqExact), takes levels with max or argMax, and
// sums, averages and quantiles over distinct events (distinct). Verdicts
// come from the store: verdicts FINAL (one row per decision, counted by
// its decision time) for many decisions, decision_verdicts for one.
// Pending decisions (their context may still be on its way) are shown as
// such and left out of the rates. Budgets come from the contracts in force
// (contract_sources).

// distinct is the events that match where, each stored event once: a
// resent event is stored again under the same ID, a copy, so any() of each
// column is the event's (as the rules' quantile kind reads them). Grouped
// by ID, which ClickHouse spreads over its cores where LIMIT 1 BY did not
// (a day of outcomes at 100M events: 0.7 against 1.3 s); the columns are
// picked in an outer query so that where reads the stored ones, not the
// picks of the same name.
func distinct(cols, where string) string {
	names := strings.Split(cols, ",")
	picks := make([]string, len(names))
	for i, c := range names {
		c = strings.TrimSpace(c)
		picks[i] = "any(" + c + ") AS " + c
	}
	return "(SELECT " + strings.Join(picks, ", ") + " FROM (SELECT event_id, " + cols + " FROM events WHERE " + where + ") GROUP BY event_id)"
}

// outputs is the model outputs that match where, each once: the store's
// model_outputs, read with FINAL (a merge of sorted parts, far cheaper than
// distinct over events).
func outputs(cols, where string) string {
	return "(SELECT " + cols + " FROM model_outputs FINAL WHERE " + where + ")"
}

// Percentiles are exact (quantileExactInclusive), as the rules' are: on a
// large range quantile() samples 8192 values, so a panel would show a
// p95 a few percent off the alert's, and a different one at each refresh.

// untilFirst is the p50 and p95 of the time from each decision's first
// model output (up to a day before the range) to its first event of the
// layer and event given, per workflow, by the time of that event: what the
// interval rule kind pages on. Decisions are joined by their IDs' hash
// (model_outputs keeps it), and the outputs are read without FINAL: a
// twin output changes no minimum. A day at 100M events: 3.5 against 6.4
// s with the ID strings and FINAL.
func untilFirst(event, layer string) string {
	return "SELECT $__timeInterval(e.first_time) AS time, e.wf AS workflow, " +
		"quantileExactInclusive(0.5)(dateDiff('millisecond', o.output_time, e.first_time) / 1000) AS p50_s, " +
		"quantileExactInclusive(0.95)(dateDiff('millisecond', o.output_time, e.first_time) / 1000) AS p95_s FROM " +
		"(SELECT cityHash64(decision_id) AS d, any(workflow) AS wf, min(time) AS first_time FROM events WHERE time >= $__fromTime - INTERVAL 1 DAY AND time <= $__toTime " +
		"AND layer = '" + layer + "' AND event = '" + event + "' AND decision_id != '' AND " + wf("workflow") + " GROUP BY d HAVING $__timeFilter(first_time)) AS e " +
		"INNER JOIN (SELECT decision_hash AS d, min(time) AS output_time FROM model_outputs WHERE time >= $__fromTime - INTERVAL 1 DAY AND time <= $__toTime AND " + wf("workflow") +
		" GROUP BY d) AS o ON e.d = o.d GROUP BY time, workflow ORDER BY time"
}

// sliUnits is what each SLI counts in the range, one row per unit: its
// workflow (wf), the SLI, whether it is bad, and for good_outcomes its
// latest outcome (bad when the contract lists it). A decision counts by
// its latest counted signal, a verdict once, as the slo_burn_rate rules
// the contracts derive count them (a test holds the two to the same
// numbers).
const sliUnits = "SELECT wf, 'safe_outputs' AS sli, bad, '' AS outcome FROM (SELECT decision_id, any(workflow) AS wf, argMax(ifNull(model_unsafe, false), time) AS bad " +
	"FROM events WHERE $__timeFilter(time) AND event = 'model.output' AND decision_id != '' GROUP BY decision_id) " +
	"UNION ALL SELECT wf, 'accepted_recommendations', bad, '' FROM (SELECT decision_id, any(workflow) AS wf, argMax(human_action IN ('overridden', 'ignored'), time) AS bad " +
	"FROM events WHERE $__timeFilter(time) AND event = 'human.action' AND decision_id != '' GROUP BY decision_id) " +
	"UNION ALL SELECT wf, 'good_outcomes', false, last_outcome FROM (SELECT decision_id, any(workflow) AS wf, argMax(outcome, time) AS last_outcome " +
	"FROM events WHERE $__timeFilter(time) AND event = 'business.outcome' AND decision_id != '' GROUP BY decision_id) " +
	"UNION ALL SELECT workflow, 'fresh_context', context IN ('stale', 'missing'), '' FROM verdicts FINAL WHERE $__timeFilter(decision_time) AND " + judged

// outputVersions is, per decision (d, its ID's hash), the model version
// of its first output up to a day before the range (human actions carry
// none), of the selected versions: what the per-version human panels join
// on. From model_outputs without FINAL: a twin output changes no first.
var outputVersions = "(SELECT decision_hash AS d, argMin(model_version, time) AS version FROM model_outputs " +
	"WHERE time >= $__fromTime - INTERVAL 1 DAY AND time <= $__toTime AND model_version != '' AND " +
	wf("workflow") + " GROUP BY d HAVING " + mv("version") + ")"

// judged is the condition for a verdict that counts in a rate.
const judged = "context != 'pending'"

// Specs are decisiontrace's dashboards. Table names are unqualified: the
// datasource's default database is the decision store's.
func Specs() []Spec {
	return []Spec{
		{
			UID: "decisiontrace-overview", Title: "decisiontrace: overview", Variables: []string{"workflow"},
			Description: "Per workflow: are all five layers reporting, what fires, how many decisions, how many of them confident on stale or missing context, how many still wait for theirs.",
			Panels: []Panel{
				{Kind: Stat, Title: "Decisions", W: 4, H: 5, Unit: "short",
					Question: "How many decisions did the model make in the range?",
					SQL:      "SELECT uniqExact(decision_id) AS decisions FROM events WHERE $__timeFilter(time) AND layer = 'model' AND event = 'model.output' AND " + wf("workflow"),
					Columns:  []string{"decisions"}},
				{Kind: Stat, Title: "Unsupported certainty", W: 5, H: 5, Unit: "percentunit", Thresholds: []float64{0.02, 0.05},
					Question: "What share of the decisions judged in the range (pending ones left out) were confident on stale or missing context?",
					SQL: "SELECT countIf(unsupported_certainty AND " + judged + ") / greatest(countIf(" + judged + "), 1) AS unsupported FROM verdicts FINAL " +
						"WHERE $__timeFilter(decision_time) AND " + wf("workflow"),
					Columns: []string{"unsupported"}},
				{Kind: Stat, Title: "Pending decisions", W: 5, H: 5, Unit: "short",
					Question: "How many decisions of the range still wait for required context that may be on its way (not yet judged fresh, stale or missing)?",
					SQL:      "SELECT countIf(context = 'pending') AS pending FROM verdicts FINAL WHERE $__timeFilter(decision_time) AND " + wf("workflow"),
					Columns:  []string{"pending"}},
				{Kind: Stat, Title: "Firing alerts", W: 5, H: 5, Unit: "short", Thresholds: []float64{1, 1},
					Question: "How many alerts fire now?",
					SQL:      "SELECT count() AS firing FROM alert_state FINAL WHERE is_deleted = 0 AND state = 'firing' AND " + wf("labels['workflow']"),
					Columns:  []string{"firing"}},
				{Kind: Stat, Title: "Silent layers", W: 5, H: 5, Unit: "short", Thresholds: []float64{1, 1},
					Question: "How many (workflow, layer) pairs sent nothing in the last 15 minutes of the range while they did before?",
					SQL: "SELECT countIf(last < $__toTime - INTERVAL 15 MINUTE) AS silent FROM (SELECT workflow, layer, max(time) AS last FROM events " +
						"WHERE $__timeFilter(time) AND layer IN ('data', 'model', 'workflow', 'human', 'business') AND " + wf("workflow") + " GROUP BY workflow, layer)",
					Columns: []string{"silent"}},
				{Kind: TimeSeries, Title: "Decisions per minute", W: 12, Unit: "short",
					Question: "Is each workflow deciding at its usual pace?",
					SQL: "SELECT $__timeInterval(time) AS time, workflow, uniqExact(decision_id) * 60 / $__interval_s AS decisions_per_min FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'model' AND event = 'model.output' AND " + wf("workflow") + " GROUP BY time, workflow ORDER BY time",
					Columns: []string{"time", "workflow", "decisions_per_min"}},
				{Kind: TimeSeries, Title: "Unsupported certainty by workflow", W: 12, Unit: "percentunit", Thresholds: []float64{0.02, 0.05},
					Question: "When did decisions start being confident on stale or missing context, and in which workflow (by decision time, pending decisions left out)?",
					SQL: "SELECT $__timeInterval(decision_time) AS time, workflow, countIf(unsupported_certainty AND " + judged + ") / countIf(" + judged + ") AS unsupported " +
						"FROM verdicts FINAL WHERE $__timeFilter(decision_time) AND " + wf("workflow") + " GROUP BY time, workflow HAVING countIf(" + judged + ") > 0 ORDER BY time",
					Columns: []string{"time", "workflow", "unsupported"}},
				{Kind: TimeSeries, Title: "Verdicts by context", W: 12, Unit: "short",
					Question: "How many decisions had fresh, stale or missing context, and how many are still pending, by decision time?",
					SQL: "SELECT $__timeInterval(decision_time) AS time, context, count() AS decisions FROM verdicts FINAL " +
						"WHERE $__timeFilter(decision_time) AND " + wf("workflow") + " GROUP BY time, context ORDER BY time",
					Columns: []string{"time", "context", "decisions"}},
				{Kind: Table, Title: "Active alerts", W: 12, H: 8,
					Question: "What is pending or firing, since when, with which value?",
					SQL: "SELECT labels['alertname'] AS alert, state, labels['workflow'] AS workflow, value, if(state = 'firing', fired_at, active_at) AS since " +
						"FROM alert_state FINAL WHERE is_deleted = 0 AND state IN ('pending', 'firing') AND " + wf("labels['workflow']") + " ORDER BY state, since",
					Columns: []string{"alert", "state", "workflow", "value", "since"}},
				{Kind: Table, Title: "Five layers", W: 24, H: 9, Unit: "short",
					Question: "Is every layer of every workflow reporting: how many signals, and how long since the last?",
					SQL: "SELECT workflow, layer, uniqExact(event_id) AS signals, dateDiff('second', max(time), $__toTime) AS seconds_since_last FROM events " +
						"WHERE $__timeFilter(time) AND layer IN ('data', 'model', 'workflow', 'human', 'business') AND " + wf("workflow") +
						" GROUP BY workflow, layer ORDER BY workflow, " + layerOrder,
					Columns: []string{"workflow", "layer", "signals", "seconds_since_last"}},
				{Kind: Table, Title: "Decision SLOs: error budget left over the range", W: 24, H: 7,
					ColumnUnits: map[string]string{"objective": "percentunit", "bad_share": "percentunit", "budget_left": "percentunit"},
					Question:    "How much of each decision SLO's error budget is left, counted over the range as its burn-rate alerts count it?",
					// The contracts' few SLOs on the join's right, the side
					// it builds its hash table from: with the range's units
					// there, 4.6 s at 100M events against 3.2 s.
					SQL: "SELECT s.workflow AS workflow, s.slo AS slo, s.sli AS sli, s.objective AS objective, count() AS counted, " +
						"countIf(u.bad OR has(s.bad_outcomes, u.outcome)) / counted AS bad_share, 1 - bad_share / (1 - objective) AS budget_left " +
						"FROM (" + sliUnits + ") AS u INNER JOIN contract_slos AS s ON s.workflow = u.wf AND s.sli = u.sli " +
						"WHERE " + wf("s.workflow") + " GROUP BY workflow, slo, sli, objective ORDER BY budget_left, workflow, slo",
					Columns: []string{"workflow", "slo", "sli", "objective", "counted", "bad_share", "budget_left"}},
			},
		},
		{
			UID: "decisiontrace-data", Title: "decisiontrace: data", Variables: []string{"workflow", "source"},
			Description: "The context decisions read: freshness against the contracts' budgets, read lag and the decisions waiting for context, availability, identity reconciliation, completeness.",
			Panels: []Panel{
				{Kind: TimeSeries, Title: "Source age ÷ budget", W: 24, Unit: "percentunit", Thresholds: []float64{0.8, 1},
					Question: "Which source's freshest data is older than its contract allows (above the 100% line: what the staleness alert judges), and since when?",
					SQL: "SELECT $__timeInterval(e.time) AS time, concat(e.workflow, '/', e.source) AS source, " +
						"dateDiff('millisecond', max(e.as_of), max(e.time)) / 1000 / any(b.max_age_s) AS age_over_budget " +
						"FROM events AS e INNER JOIN (SELECT workflow, source, max_age_s FROM contract_sources WHERE max_age_s > 0) AS b ON e.workflow = b.workflow AND e.source = b.source " +
						"WHERE $__timeFilter(e.time) AND e.layer = 'data' AND e.event IN ('source.freshness', 'context.read') AND e.as_of IS NOT NULL AND " +
						wf("e.workflow") + " AND " + src("e.source") + " GROUP BY time, source ORDER BY time",
					Columns: []string{"time", "source", "age_over_budget"}},
				{Kind: Table, Title: "Freshness now", W: 12, H: 9, Unit: "s",
					Question: "How old is each source's newest data at the end of the range, against its budget, and who owns it?",
					SQL: "SELECT e.workflow AS workflow, e.source AS source, dateDiff('second', max(e.as_of), $__toTime) AS age_s, nullIf(any(b.max_age_s), 0) AS budget_s, any(b.owner) AS owner " +
						"FROM events AS e LEFT JOIN (SELECT workflow, source, max_age_s, owner FROM contract_sources) AS b ON e.workflow = b.workflow AND e.source = b.source " +
						"WHERE $__timeFilter(e.time) AND e.layer = 'data' AND e.as_of IS NOT NULL AND " + wf("e.workflow") + " AND " + src("e.source") +
						" GROUP BY workflow, source ORDER BY workflow, source",
					Columns: []string{"workflow", "source", "age_s", "budget_s", "owner"}},
				{Kind: Table, Title: "Read lag and pending decisions", W: 12, H: 9, Unit: "s",
					ColumnUnits: map[string]string{"pending_decisions": "short"},
					Question:    "How far do each source's context reads trail its workflow's decisions in event time (past max_context_lag, decisions without a read turn missing), and how many decisions of the range wait for them?",
					SQL: "SELECT l.workflow AS workflow, l.source AS source, l.lag_s AS lag_s, nullIf(c.max_context_lag_s, 0) AS max_context_lag_s, p.pending AS pending_decisions " +
						"FROM (SELECT workflow, source, lag_s FROM read_lag) AS l " +
						"LEFT JOIN (SELECT workflow, argMax(max_context_lag_s, effective_from) AS max_context_lag_s FROM contracts FINAL GROUP BY workflow) AS c ON l.workflow = c.workflow " +
						"LEFT JOIN (SELECT workflow, source, count() AS pending FROM verdicts FINAL ARRAY JOIN pending_sources AS source " +
						"WHERE $__timeFilter(decision_time) AND context = 'pending' GROUP BY workflow, source) AS p ON l.workflow = p.workflow AND l.source = p.source " +
						"WHERE " + wf("l.workflow") + " AND " + src("l.source") + " ORDER BY lag_s DESC, workflow, source",
					Columns: []string{"workflow", "source", "lag_s", "max_context_lag_s", "pending_decisions"}},
				{Kind: TimeSeries, Title: "Availability", W: 12, H: 9, Unit: "percentunit", Thresholds: []float64{0.99, 0.99},
					Question: "Could the freshness pollers reach each source?",
					SQL: "SELECT $__timeInterval(time) AS time, source, uniqExactIf(event_id, data_available) / uniqExact(event_id) AS available FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'data' AND event = 'source.freshness' AND data_available IS NOT NULL AND " + wf("workflow") + " AND " + src("source") +
						" GROUP BY time, source ORDER BY time",
					Columns: []string{"time", "source", "available"}},
				{Kind: TimeSeries, Title: "Unresolved identifiers", W: 12, H: 9, Unit: "short",
					Question: "How many entity IDs of each system did not map to a canonical ID?",
					SQL: "SELECT $__timeInterval(time) AS time, entity_system, uniqExactIf(entity_id, NOT entity_resolved) AS unresolved FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'data' AND entity_resolved IS NOT NULL AND " + wf("workflow") + " AND " + src("source") +
						" GROUP BY time, entity_system ORDER BY time",
					Columns: []string{"time", "entity_system", "unresolved"}},
				{Kind: TimeSeries, Title: "Complete reads", W: 24, Unit: "percentunit",
					Question: "What share of context reads returned complete data?",
					SQL: "SELECT $__timeInterval(time) AS time, source, uniqExactIf(event_id, data_complete) / uniqExact(event_id) AS complete FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'data' AND event = 'context.read' AND data_complete IS NOT NULL AND " + wf("workflow") + " AND " + src("source") +
						" GROUP BY time, source ORDER BY time",
					Columns: []string{"time", "source", "complete"}},
			},
		},
		{
			UID: "decisiontrace-model", Title: "decisiontrace: model", Variables: []string{"workflow", "model_version"},
			Description: "The model's outputs per version: confidence and its drift, latency, unsafe and low-confidence outputs, tokens and cost.",
			Panels: []Panel{
				{Kind: TimeSeries, Title: "Median confidence by model version", W: 12, Unit: "percentunit",
					Question: "Has a model version's confidence moved?",
					SQL: "SELECT $__timeInterval(time) AS time, model_version, quantileExactInclusive(0.5)(confidence) AS median_confidence FROM " +
						outputs("time, model_version, confidence", "$__timeFilter(time) AND confidence IS NOT NULL AND "+wf("workflow")+" AND "+mv("model_version")) +
						" GROUP BY time, model_version ORDER BY time",
					Columns: []string{"time", "model_version", "median_confidence"}},
				{Kind: TimeSeries, Title: "Confidence drift against the day before", W: 12, Unit: "percentunit", Thresholds: []float64{0.05, 0.1},
					Question: "How far (up or down) is mean confidence from its mean over the 24 hours before the range?",
					SQL: "SELECT $__timeInterval(o.time) AS time, o.workflow AS workflow, abs(avg(o.confidence) - any(b.baseline)) AS drift FROM " +
						outputs("time, workflow, confidence", "$__timeFilter(time) AND confidence IS NOT NULL AND "+wf("workflow")+" AND "+mv("model_version")) +
						" AS o INNER JOIN (SELECT workflow, avg(confidence) AS baseline FROM " +
						outputs("workflow, confidence", "time >= $__fromTime - INTERVAL 1 DAY AND time < $__fromTime AND confidence IS NOT NULL AND "+wf("workflow")+" AND "+mv("model_version")) +
						" GROUP BY workflow) AS b ON o.workflow = b.workflow GROUP BY time, workflow ORDER BY time",
					Columns: []string{"time", "workflow", "drift"}},
				{Kind: BarChart, Title: "Confidence distribution", W: 12, Unit: "short",
					Question: "How is confidence spread, per model version?",
					SQL: "SELECT toString(floor(confidence, 1)) AS confidence, model_version, uniqExact(event_id) AS outputs FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'model' AND event = 'model.output' AND confidence IS NOT NULL AND " + wf("workflow") + " AND " + mv("model_version") +
						" GROUP BY confidence, model_version ORDER BY confidence, model_version",
					Columns: []string{"confidence", "model_version", "outputs"}, Matrix: &[3]string{"confidence", "model_version", "outputs"}},
				{Kind: TimeSeries, Title: "Latency p95 by model version", W: 12, Unit: "ms",
					Question: "Is a model version slower?",
					SQL: "SELECT $__timeInterval(time) AS time, model_version, quantileExactInclusive(0.95)(model_latency_ms) AS latency_p95_ms FROM " +
						outputs("time, model_version, latency_ms AS model_latency_ms", "$__timeFilter(time) AND latency_ms IS NOT NULL AND "+wf("workflow")+" AND "+mv("model_version")) +
						" GROUP BY time, model_version ORDER BY time",
					Columns: []string{"time", "model_version", "latency_p95_ms"}},
				{Kind: TimeSeries, Title: "Unsafe and low-confidence outputs", W: 12, Unit: "short",
					Question: "How many outputs were flagged unsafe, and how many decisions were below the contract's confidence floor (by decision time)?",
					SQL: "SELECT time, sum(unsafe) AS unsafe, sum(low) AS low_confidence FROM (" +
						"SELECT $__timeInterval(time) AS time, uniqExactIf(event_id, model_unsafe) AS unsafe, toUInt64(0) AS low FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'model' AND event = 'model.output' AND " + wf("workflow") + " AND " + mv("model_version") + " GROUP BY time " +
						"UNION ALL SELECT $__timeInterval(decision_time) AS time, toUInt64(0) AS unsafe, countIf(confidence_low) AS low FROM verdicts FINAL " +
						"WHERE $__timeFilter(decision_time) AND " + wf("workflow") + " AND " + mv("model_version") + " GROUP BY time" +
						") GROUP BY time ORDER BY time",
					Columns: []string{"time", "unsafe", "low_confidence"}},
				{Kind: TimeSeries, Title: "Evaluations under 0.5, by evaluator", W: 12, Unit: "percentunit", Thresholds: []float64{0.1, 0.2},
					Question: "Do the evaluators (gen_ai.evaluation.result) fail more outputs than usual? Each decision by its latest score.",
					SQL: "SELECT $__timeInterval(t) AS time, evaluation_name, countIf(score < 0.5) / count() AS share_under_half FROM (" +
						"SELECT decision_id, evaluation_name, argMax(evaluation_score, time) AS score, max(time) AS t FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'model' AND event = 'model.evaluation' AND evaluation_score IS NOT NULL AND " + wf("workflow") +
						" GROUP BY decision_id, evaluation_name) GROUP BY time, evaluation_name ORDER BY time",
					Columns: []string{"time", "evaluation_name", "share_under_half"}},
				{Kind: Table, Title: "Tokens and cost per model version", W: 12, Unit: "short",
					Question: "What does each model version consume, and what do its decisions cost?",
					// Decisions joined by their IDs' hash: a day of them at
					// 100M events, 5.5 against 7.1 s with the strings.
					SQL: "SELECT o.model_version AS model_version, sum(o.outputs) AS outputs, sum(o.input_tokens) AS input_tokens, sum(o.output_tokens) AS output_tokens, " +
						"sum(c.cost) AS business_cost FROM (SELECT cityHash64(decision_id) AS d, model_version, count() AS outputs, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens FROM " +
						distinct("decision_id, model_version, input_tokens, output_tokens", "$__timeFilter(time) AND layer = 'model' AND event = 'model.output' AND "+wf("workflow")+" AND "+mv("model_version")) +
						" GROUP BY d, model_version) AS o LEFT JOIN (SELECT cityHash64(decision_id) AS d, sum(business_cost) AS cost FROM " +
						distinct("decision_id, business_cost", "$__timeFilter(time) AND layer = 'business' AND business_cost IS NOT NULL AND "+wf("workflow")) +
						" GROUP BY d) AS c ON o.d = c.d GROUP BY model_version ORDER BY model_version",
					Columns: []string{"model_version", "outputs", "input_tokens", "output_tokens", "business_cost"}},
			},
		},
		{
			UID: "decisiontrace-workflow", Title: "decisiontrace: workflow", Variables: []string{"workflow"},
			Description: "Where decisions go after the model: queues and their growth, routes, exceptions, rework, hand-offs to people.",
			Panels: []Panel{
				{Kind: TimeSeries, Title: "Queue depth", W: 12, Unit: "short",
					Question: "Is a review queue filling up?",
					SQL: "SELECT $__timeInterval(time) AS time, concat(workflow, '/', queue) AS queue, max(queue_depth) AS depth FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'workflow' AND event = 'queue.depth' AND queue_depth IS NOT NULL AND " + wf("workflow") + " GROUP BY time, queue ORDER BY time",
					Columns: []string{"time", "queue", "depth"}},
				{Kind: TimeSeries, Title: "Queue growth per interval", W: 12, Unit: "short",
					Question: "How fast does each queue grow or drain?",
					// The last depth of each interval against the interval before
					// (the deepest of the last time's, so that ties are settled).
					// events.time, not the interval alias, inside the aggregate.
					SQL: "SELECT time, queue, depth - lagInFrame(depth, 1, depth) OVER (PARTITION BY queue ORDER BY time) AS growth FROM (" +
						"SELECT $__timeInterval(time) AS time, concat(workflow, '/', queue) AS queue, argMax(queue_depth, (events.time, assumeNotNull(queue_depth))) AS depth FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'workflow' AND event = 'queue.depth' AND queue_depth IS NOT NULL AND " + wf("workflow") + " GROUP BY time, queue) ORDER BY time",
					Columns: []string{"time", "queue", "growth"}},
				{Kind: BarChart, Title: "Routes", W: 8, Unit: "short",
					Question: "Where do decisions go: automated, to review, escalated?",
					SQL: "SELECT route, workflow, uniqExact(decision_id) AS decisions FROM events WHERE $__timeFilter(time) AND layer = 'workflow' AND event = 'workflow.routed' AND route != '' AND " +
						wf("workflow") + " GROUP BY route, workflow ORDER BY route, workflow",
					Columns: []string{"route", "workflow", "decisions"}, Matrix: &[3]string{"route", "workflow", "decisions"}},
				{Kind: TimeSeries, Title: "Exceptions", W: 8, Unit: "short",
					Question: "Which exceptions does the workflow raise?",
					SQL: "SELECT $__timeInterval(time) AS time, exception_type, uniqExact(event_id) AS exceptions FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'workflow' AND event = 'workflow.exception' AND " + wf("workflow") + " GROUP BY time, exception_type ORDER BY time",
					Columns: []string{"time", "exception_type", "exceptions"}},
				{Kind: TimeSeries, Title: "Rework and hand-offs", W: 8, Unit: "short",
					Question: "How many decisions were reworked, and how many were handed to a person's queue?",
					SQL: "SELECT $__timeInterval(time) AS time, uniqExactIf(decision_id, event = 'workflow.rework') AS rework, " +
						"uniqExactIf(decision_id, event = 'workflow.routed' AND queue != '') AS handoffs FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'workflow' AND decision_id != '' AND " + wf("workflow") + " GROUP BY time ORDER BY time",
					Columns: []string{"time", "rework", "handoffs"}},
			},
		},
		{
			UID: "decisiontrace-human", Title: "decisiontrace: human", Variables: []string{"workflow", "model_version"},
			Description: "What reviewers do with recommendations: override, ignore and escalate rates by workflow, model version and reviewer; time to action.",
			Panels: []Panel{
				{Kind: TimeSeries, Title: "Override rate by workflow", W: 12, Unit: "percentunit", Thresholds: []float64{0.15, 0.2},
					Question: "Are reviewers overriding more recommendations than usual?",
					SQL: "SELECT $__timeInterval(time) AS time, workflow, uniqExactIf(event_id, human_action = 'overridden') / uniqExact(event_id) AS override_rate FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'human' AND event = 'human.action' AND human_action != '' AND " + wf("workflow") + " GROUP BY time, workflow ORDER BY time",
					Columns: []string{"time", "workflow", "override_rate"}},
				{Kind: TimeSeries, Title: "Override rate by model version", W: 12, Unit: "percentunit", Thresholds: []float64{0.15, 0.2},
					Question: "Is a new model version overridden more than the one before?",
					// As the override-rate rule: human actions in the range, the
					// model version of the decision's first output up to a day
					// before.
					SQL: "SELECT $__timeInterval(h.time) AS time, o.version AS model_version, uniqExactIf(h.event_id, h.action = 'overridden') / uniqExact(h.event_id) AS override_rate " +
						"FROM (SELECT cityHash64(decision_id) AS d, event_id, time, human_action AS action FROM events WHERE $__timeFilter(time) AND layer = 'human' AND event = 'human.action' " +
						"AND human_action != '' AND " + wf("workflow") + ") AS h INNER JOIN " + outputVersions + " AS o ON h.d = o.d GROUP BY time, model_version ORDER BY time",
					Columns: []string{"time", "model_version", "override_rate"}},
				{Kind: TimeSeries, Title: "Actions", W: 12, Unit: "short",
					Question: "Accepted, modified, overridden, ignored, escalated: how many of each?",
					SQL: "SELECT $__timeInterval(time) AS time, human_action, uniqExact(event_id) AS actions FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'human' AND event = 'human.action' AND human_action != '' AND " + wf("workflow") + " GROUP BY time, human_action ORDER BY time",
					Columns: []string{"time", "human_action", "actions"}},
				{Kind: TimeSeries, Title: "Time to action (p50, p95)", W: 12, Unit: "s",
					Question: "How long do recommendations wait for a person?",
					// As the interval kind counts it: each decision once, from
					// its first output (up to a day before) to its first action.
					SQL:     untilFirst("human.action", "human"),
					Columns: []string{"time", "workflow", "p50_s", "p95_s"}},
				{Kind: Table, Title: "Reviewers", W: 24, H: 9, Unit: "short",
					ColumnUnits: map[string]string{"override_rate": "percentunit", "ignore_rate": "percentunit", "escalate_rate": "percentunit"},
					Question:    "Which reviewers override, ignore or escalate most?",
					SQL: "SELECT human_actor AS reviewer, uniqExact(event_id) AS actions, uniqExactIf(event_id, human_action = 'overridden') / actions AS override_rate, " +
						"uniqExactIf(event_id, human_action = 'ignored') / actions AS ignore_rate, uniqExactIf(event_id, human_action = 'escalated') / actions AS escalate_rate FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'human' AND event = 'human.action' AND human_actor != '' AND " + wf("workflow") + " GROUP BY reviewer ORDER BY actions DESC, reviewer LIMIT 50",
					Columns: []string{"reviewer", "actions", "override_rate", "ignore_rate", "escalate_rate"}},
				{Kind: Table, Title: "Trust by model version", W: 24, H: 7,
					ColumnUnits: map[string]string{"accepted": "percentunit", "modified": "percentunit", "overridden": "percentunit", "ignored": "percentunit", "escalated": "percentunit"},
					Question:    "Of the decisions acted on in the range, what share did reviewers accept, modify, override, ignore or escalate, per model version?",
					// As the contracts' human rules count: each decision by its
					// latest action, its model version from its first output.
					SQL: "SELECT o.version AS model_version, count() AS decisions, countIf(h.action = 'accepted') / decisions AS accepted, " +
						"countIf(h.action = 'modified') / decisions AS modified, countIf(h.action = 'overridden') / decisions AS overridden, " +
						"countIf(h.action = 'ignored') / decisions AS ignored, countIf(h.action = 'escalated') / decisions AS escalated " +
						"FROM (SELECT cityHash64(decision_id) AS d, argMax(human_action, time) AS action FROM events WHERE $__timeFilter(time) AND layer = 'human' AND event = 'human.action' " +
						"AND human_action != '' AND decision_id != '' AND " + wf("workflow") + " GROUP BY d) AS h INNER JOIN " + outputVersions + " AS o ON h.d = o.d GROUP BY model_version ORDER BY model_version",
					Columns: []string{"model_version", "decisions", "accepted", "modified", "overridden", "ignored", "escalated"}},
			},
		},
		{
			UID: "decisiontrace-business", Title: "decisiontrace: business", Variables: []string{"workflow"},
			Description: "What decisions lead to: outcomes, cycle time, cost, and how long a decision takes from first signal to outcome.",
			Panels: []Panel{
				{Kind: TimeSeries, Title: "Outcomes", W: 12, Unit: "short",
					Question: "Which outcomes do decisions lead to, and is the feed still arriving?",
					SQL: "SELECT $__timeInterval(time) AS time, outcome, uniqExact(event_id) AS outcomes FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'business' AND event = 'business.outcome' AND outcome != '' AND " + wf("workflow") + " GROUP BY time, outcome ORDER BY time",
					Columns: []string{"time", "outcome", "outcomes"}},
				{Kind: TimeSeries, Title: "Cycle time (median)", W: 12, Unit: "s",
					Question: "How long do cases take end to end?",
					SQL: "SELECT $__timeInterval(time) AS time, workflow, quantileExactInclusive(0.5)(cycle_time_s) AS median_cycle_time_s FROM " +
						distinct("time, workflow, cycle_time_s", "$__timeFilter(time) AND layer = 'business' AND event = 'business.outcome' AND cycle_time_s IS NOT NULL AND "+wf("workflow")) +
						" GROUP BY time, workflow ORDER BY time",
					Columns: []string{"time", "workflow", "median_cycle_time_s"}},
				{Kind: TimeSeries, Title: "Cost", W: 12, Unit: "short",
					Question: "What do the decisions' outcomes cost per interval?",
					SQL: "SELECT $__timeInterval(time) AS time, workflow, sum(business_cost) AS cost FROM " +
						distinct("time, workflow, business_cost", "$__timeFilter(time) AND layer = 'business' AND business_cost IS NOT NULL AND "+wf("workflow")) +
						" GROUP BY time, workflow ORDER BY time",
					Columns: []string{"time", "workflow", "cost"}},
				{Kind: TimeSeries, Title: "Decision latency (recommendation to outcome, p50 and p95, by outcome time)", W: 12, Unit: "s",
					Question: "How long from a recommendation to its business outcome?",
					SQL:      untilFirst("business.outcome", "business"),
					Columns:  []string{"time", "workflow", "p50_s", "p95_s"}},
			},
		},
		{
			UID: "decisiontrace-explorer", Title: "decisiontrace: decision explorer", Variables: []string{"workflow", "decision_id"},
			Description: "One decision across the five layers, with its verdict as the store judges it now. Alert links land here with the workflow and an example decision filled in.",
			Panels: []Panel{
				{Kind: Table, Title: "Verdict", W: 24, H: 5,
					Question: "What does decisiontrace conclude about this decision, against the contract in force at its decision time: its context (pending while required context may still arrive), the sources behind it, and what the contract prescribes?",
					SQL: "SELECT decision_time, model_version, confidence, context, arrayStringConcat(stale_sources, ', ') AS stale, arrayStringConcat(missing_sources, ', ') AS missing, " +
						"arrayStringConcat(pending_sources, ', ') AS pending, stale_source AS stalest_source, stale_age_s, stale_budget_s, confidence_low, unsupported_certainty, behaviour, context_source " +
						"FROM decision_verdicts WHERE decision_id = ${decision_id:sqlstring} AND decision_id != ''",
					Columns: []string{"decision_time", "model_version", "confidence", "context", "stale", "missing", "pending", "stalest_source", "stale_age_s", "stale_budget_s",
						"confidence_low", "unsupported_certainty", "behaviour", "context_source"}},
				{Kind: Table, Title: "Decision", W: 24, H: 5,
					Question: "Which layers reported, and where did the decision end up?",
					SQL: "SELECT decision_id, workflow, arrayStringConcat(layers_seen, ' ') AS layers, events, recommendation, route, queue, human_action, human_actor, outcome, first_seen, last_seen " +
						"FROM decision_summary WHERE decision_id = ${decision_id:sqlstring} AND decision_id != ''",
					Columns: []string{"decision_id", "workflow", "layers", "events", "recommendation", "route", "queue", "human_action", "human_actor", "outcome", "first_seen", "last_seen"}},
				{Kind: Table, Title: "Timeline", W: 24, H: 12,
					Question: "What happened to this decision, layer by layer, in event time (each signal once, however often it was sent)?",
					SQL: "SELECT time, layer, event, source, as_of, model_version, confidence, recommendation, route, queue, human_action, human_actor, outcome " +
						"FROM events WHERE decision_id = ${decision_id:sqlstring} AND decision_id != '' AND event != 'decision.verdict' " +
						// The rollup (ordered by decision_id) bounds the time, so
						// ClickHouse skips the other days.
						"AND time >= (SELECT min(first_seen) FROM decision_rollup WHERE decision_id = ${decision_id:sqlstring}) " +
						"AND time <= (SELECT max(last_seen) FROM decision_rollup WHERE decision_id = ${decision_id:sqlstring}) " +
						"ORDER BY time, " + layerOrder + ", event, event_id LIMIT 1 BY event_id",
					Columns: []string{"time", "layer", "event", "source", "as_of", "model_version", "confidence", "recommendation", "route", "queue",
						"human_action", "human_actor", "outcome"}},
				{Kind: Table, Title: "Recent decisions confident on stale or missing context", W: 24, H: 10,
					Question: "Which decisions to open first?",
					SQL: "SELECT decision_time AS time, decision_id, workflow, context, stale_source, arrayStringConcat(missing_sources, ', ') AS missing, behaviour FROM verdicts FINAL " +
						"WHERE $__timeFilter(decision_time) AND unsupported_certainty AND " + wf("workflow") + " ORDER BY decision_time DESC, decision_id LIMIT 100",
					Columns: []string{"time", "decision_id", "workflow", "context", "stale_source", "missing", "behaviour"}},
			},
		},
	}
}
