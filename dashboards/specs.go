package dashboards

// The five layers in their order, for sorting.
const layerOrder = "indexOf(['data', 'model', 'workflow', 'human', 'business'], layer)"

// Specs are decisiontrace's dashboards. Table names are unqualified: the
// datasource's default database is the decision store's.
func Specs() []Spec {
	return []Spec{
		{
			UID: "decisiontrace-overview", Title: "decisiontrace: overview", Variables: []string{"workflow"},
			Description: "Per workflow: are all five layers reporting, what fires, how many decisions, how many of them confident on stale or missing context.",
			Panels: []Panel{
				{Kind: Stat, Title: "Decisions", W: 6, H: 5, Unit: "short",
					Question: "How many decisions did the model make in the range?",
					SQL:      "SELECT uniqExact(decision_id) AS decisions FROM events WHERE $__timeFilter(time) AND layer = 'model' AND event = 'model.output' AND " + wf("workflow"),
					Columns:  []string{"decisions"}},
				{Kind: Stat, Title: "Unsupported certainty", W: 6, H: 5, Unit: "percentunit", Thresholds: []float64{0.02, 0.05},
					Question: "What share of judged decisions were confident on stale or missing context?",
					SQL:      "SELECT countIf(verdict_unsupported) / greatest(count(), 1) AS unsupported FROM events WHERE $__timeFilter(time) AND layer = 'model' AND event = 'decision.verdict' AND " + wf("workflow"),
					Columns:  []string{"unsupported"}},
				{Kind: Stat, Title: "Firing alerts", W: 6, H: 5, Unit: "short", Thresholds: []float64{1, 1},
					Question: "How many alerts fire now?",
					SQL:      "SELECT count() AS firing FROM alert_state FINAL WHERE is_deleted = 0 AND state = 'firing' AND " + wf("labels['workflow']"),
					Columns:  []string{"firing"}},
				{Kind: Stat, Title: "Silent layers", W: 6, H: 5, Unit: "short", Thresholds: []float64{1, 1},
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
					Question: "When did decisions start being confident on stale or missing context, and in which workflow?",
					SQL: "SELECT $__timeInterval(time) AS time, workflow, countIf(verdict_unsupported) / count() AS unsupported FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'model' AND event = 'decision.verdict' AND " + wf("workflow") + " GROUP BY time, workflow ORDER BY time",
					Columns: []string{"time", "workflow", "unsupported"}},
				{Kind: Table, Title: "Five layers", W: 12, H: 9, Unit: "short",
					Question: "Is every layer of every workflow reporting: how many signals, and how long since the last?",
					SQL: "SELECT workflow, layer, count() AS signals, dateDiff('second', max(time), $__toTime) AS seconds_since_last FROM events " +
						"WHERE $__timeFilter(time) AND layer IN ('data', 'model', 'workflow', 'human', 'business') AND " + wf("workflow") +
						" GROUP BY workflow, layer ORDER BY workflow, " + layerOrder,
					Columns: []string{"workflow", "layer", "signals", "seconds_since_last"}},
				{Kind: Table, Title: "Active alerts", W: 12, H: 9,
					Question: "What is pending or firing, since when, with which value?",
					SQL: "SELECT labels['alertname'] AS alert, state, labels['workflow'] AS workflow, value, if(state = 'firing', fired_at, active_at) AS since " +
						"FROM alert_state FINAL WHERE is_deleted = 0 AND state IN ('pending', 'firing') AND " + wf("labels['workflow']") + " ORDER BY state, since",
					Columns: []string{"alert", "state", "workflow", "value", "since"}},
			},
		},
		{
			UID: "decisiontrace-data", Title: "decisiontrace: data", Variables: []string{"workflow", "source"},
			Description: "The context decisions read: freshness against the contracts' budgets, availability, identity reconciliation, completeness.",
			Panels: []Panel{
				{Kind: TimeSeries, Title: "Source age ÷ budget", W: 24, Unit: "percentunit", Thresholds: []float64{0.8, 1},
					Question: "Which source's freshest data is older than its contract allows (above the 100% line: what the staleness alert judges), and since when?",
					SQL: "SELECT $__timeInterval(e.time) AS time, concat(e.workflow, '/', e.source) AS source, " +
						"dateDiff('millisecond', max(e.as_of), max(e.time)) / 1000 / any(b.max_age_s) AS age_over_budget " +
						"FROM events AS e INNER JOIN (SELECT workflow, source, max_age_s FROM source_budgets FINAL) AS b ON e.workflow = b.workflow AND e.source = b.source " +
						"WHERE $__timeFilter(e.time) AND e.layer = 'data' AND e.event IN ('source.freshness', 'context.read') AND e.as_of IS NOT NULL AND " +
						wf("e.workflow") + " AND " + src("e.source") + " GROUP BY time, source ORDER BY time",
					Columns: []string{"time", "source", "age_over_budget"}},
				{Kind: Table, Title: "Freshness now", W: 12, H: 9, Unit: "s",
					Question: "How old is each source's newest data at the end of the range, against its budget?",
					SQL: "SELECT e.workflow AS workflow, e.source AS source, dateDiff('second', max(e.as_of), $__toTime) AS age_s, nullIf(any(b.max_age_s), 0) AS budget_s " +
						"FROM events AS e LEFT JOIN (SELECT workflow, source, max_age_s FROM source_budgets FINAL) AS b ON e.workflow = b.workflow AND e.source = b.source " +
						"WHERE $__timeFilter(e.time) AND e.layer = 'data' AND e.as_of IS NOT NULL AND " + wf("e.workflow") + " AND " + src("e.source") +
						" GROUP BY workflow, source ORDER BY workflow, source",
					Columns: []string{"workflow", "source", "age_s", "budget_s"}},
				{Kind: TimeSeries, Title: "Availability", W: 12, H: 9, Unit: "percentunit", Thresholds: []float64{0.99, 0.99},
					Question: "Could the freshness pollers reach each source?",
					SQL: "SELECT $__timeInterval(time) AS time, source, avg(toUInt8(data_available)) AS available FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'data' AND event = 'source.freshness' AND data_available IS NOT NULL AND " + wf("workflow") + " AND " + src("source") +
						" GROUP BY time, source ORDER BY time",
					Columns: []string{"time", "source", "available"}},
				{Kind: TimeSeries, Title: "Unresolved identifiers", W: 12, Unit: "short",
					Question: "How many entity IDs of each system did not map to a canonical ID?",
					SQL: "SELECT $__timeInterval(time) AS time, entity_system, countIf(NOT entity_resolved) AS unresolved FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'data' AND entity_resolved IS NOT NULL AND " + wf("workflow") + " AND " + src("source") +
						" GROUP BY time, entity_system ORDER BY time",
					Columns: []string{"time", "entity_system", "unresolved"}},
				{Kind: TimeSeries, Title: "Complete reads", W: 12, Unit: "percentunit",
					Question: "What share of context reads returned complete data?",
					SQL: "SELECT $__timeInterval(time) AS time, source, avg(toUInt8(data_complete)) AS complete FROM events " +
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
					SQL: "SELECT $__timeInterval(time) AS time, model_version, quantile(0.5)(confidence) AS median_confidence FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'model' AND event = 'model.output' AND confidence IS NOT NULL AND " + wf("workflow") + " AND " + mv("model_version") +
						" GROUP BY time, model_version ORDER BY time",
					Columns: []string{"time", "model_version", "median_confidence"}},
				{Kind: TimeSeries, Title: "Confidence drift against the day before", W: 12, Unit: "percentunit", Thresholds: []float64{0.05, 0.1},
					Question: "How far (up or down) is mean confidence from its mean over the 24 hours before the range?",
					SQL: "SELECT $__timeInterval(time) AS time, workflow, abs(avg(confidence) - any(baseline)) AS drift FROM events " +
						"LEFT JOIN (SELECT workflow, avg(confidence) AS baseline FROM events WHERE layer = 'model' AND event = 'model.output' " +
						"AND time >= $__fromTime - INTERVAL 1 DAY AND time < $__fromTime AND " + mv("model_version") + " GROUP BY workflow) AS b USING (workflow) " +
						"WHERE $__timeFilter(time) AND layer = 'model' AND event = 'model.output' AND confidence IS NOT NULL AND " + wf("workflow") + " AND " + mv("model_version") +
						" GROUP BY time, workflow ORDER BY time",
					Columns: []string{"time", "workflow", "drift"}},
				{Kind: BarChart, Title: "Confidence distribution", W: 12, Unit: "short",
					Question: "How is confidence spread, per model version?",
					SQL: "SELECT toString(floor(confidence, 1)) AS confidence, model_version, count() AS outputs FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'model' AND event = 'model.output' AND confidence IS NOT NULL AND " + wf("workflow") + " AND " + mv("model_version") +
						" GROUP BY confidence, model_version ORDER BY confidence, model_version",
					Columns: []string{"confidence", "model_version", "outputs"}, Matrix: &[3]string{"confidence", "model_version", "outputs"}},
				{Kind: TimeSeries, Title: "Latency p95 by model version", W: 12, Unit: "ms",
					Question: "Is a model version slower?",
					SQL: "SELECT $__timeInterval(time) AS time, model_version, quantile(0.95)(model_latency_ms) AS latency_p95_ms FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'model' AND event = 'model.output' AND model_latency_ms IS NOT NULL AND " + wf("workflow") + " AND " + mv("model_version") +
						" GROUP BY time, model_version ORDER BY time",
					Columns: []string{"time", "model_version", "latency_p95_ms"}},
				{Kind: TimeSeries, Title: "Unsafe and low-confidence outputs", W: 12, Unit: "short",
					Question: "How many outputs were flagged unsafe, or judged below the contract's confidence floor?",
					SQL: "SELECT $__timeInterval(time) AS time, countIf(event = 'model.output' AND model_unsafe) AS unsafe, " +
						"countIf(event = 'decision.verdict' AND verdict_confidence_low) AS low_confidence FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'model' AND " + wf("workflow") + " AND " + mv("model_version") + " GROUP BY time ORDER BY time",
					Columns: []string{"time", "unsafe", "low_confidence"}},
				{Kind: Table, Title: "Tokens and cost per model version", W: 12, Unit: "short",
					Question: "What does each model version consume, and what do its decisions cost?",
					SQL: "SELECT o.model_version AS model_version, count() AS outputs, sum(o.input_tokens) AS input_tokens, sum(o.output_tokens) AS output_tokens, " +
						"sum(c.cost) AS business_cost FROM events AS o LEFT JOIN (SELECT decision_id, sum(business_cost) AS cost FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'business' AND business_cost IS NOT NULL GROUP BY decision_id) AS c USING (decision_id) " +
						"WHERE $__timeFilter(o.time) AND o.layer = 'model' AND o.event = 'model.output' AND " + wf("o.workflow") + " AND " + mv("o.model_version") +
						" GROUP BY model_version ORDER BY model_version",
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
					// The last depth of each interval against the interval before.
					// events.time, not the interval alias, inside the aggregate.
					SQL: "SELECT time, queue, depth - lagInFrame(depth, 1, depth) OVER (PARTITION BY queue ORDER BY time) AS growth FROM (" +
						"SELECT $__timeInterval(time) AS time, concat(workflow, '/', queue) AS queue, argMax(queue_depth, events.time) AS depth FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'workflow' AND event = 'queue.depth' AND queue_depth IS NOT NULL AND " + wf("workflow") + " GROUP BY time, queue) ORDER BY time",
					Columns: []string{"time", "queue", "growth"}},
				{Kind: BarChart, Title: "Routes", W: 8, Unit: "short",
					Question: "Where do decisions go: automated, to review, escalated?",
					SQL: "SELECT route, workflow, count() AS decisions FROM events WHERE $__timeFilter(time) AND layer = 'workflow' AND event = 'workflow.routed' AND route != '' AND " +
						wf("workflow") + " GROUP BY route, workflow ORDER BY route, workflow",
					Columns: []string{"route", "workflow", "decisions"}, Matrix: &[3]string{"route", "workflow", "decisions"}},
				{Kind: TimeSeries, Title: "Exceptions", W: 8, Unit: "short",
					Question: "Which exceptions does the workflow raise?",
					SQL: "SELECT $__timeInterval(time) AS time, exception_type, count() AS exceptions FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'workflow' AND event = 'workflow.exception' AND " + wf("workflow") + " GROUP BY time, exception_type ORDER BY time",
					Columns: []string{"time", "exception_type", "exceptions"}},
				{Kind: TimeSeries, Title: "Rework and hand-offs", W: 8, Unit: "short",
					Question: "How many decisions were reworked, and how many were handed to a person's queue?",
					SQL: "SELECT $__timeInterval(time) AS time, countIf(event = 'workflow.rework') AS rework, countIf(event = 'workflow.routed' AND queue != '') AS handoffs FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'workflow' AND " + wf("workflow") + " GROUP BY time ORDER BY time",
					Columns: []string{"time", "rework", "handoffs"}},
			},
		},
		{
			UID: "decisiontrace-human", Title: "decisiontrace: human", Variables: []string{"workflow", "model_version"},
			Description: "What reviewers do with recommendations: override, ignore and escalate rates by workflow, model version and reviewer; time to action.",
			Panels: []Panel{
				{Kind: TimeSeries, Title: "Override rate by workflow", W: 12, Unit: "percentunit", Thresholds: []float64{0.15, 0.2},
					Question: "Are reviewers overriding more recommendations than usual?",
					SQL: "SELECT $__timeInterval(time) AS time, workflow, countIf(human_action = 'overridden') / count() AS override_rate FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'human' AND event = 'human.action' AND human_action != '' AND " + wf("workflow") + " GROUP BY time, workflow ORDER BY time",
					Columns: []string{"time", "workflow", "override_rate"}},
				{Kind: TimeSeries, Title: "Override rate by model version", W: 12, Unit: "percentunit", Thresholds: []float64{0.15, 0.2},
					Question: "Is a new model version overridden more than the one before?",
					// As the override-rate rule: human actions in the range, the
					// model version from the decision's output up to a day before.
					SQL: "SELECT $__timeInterval(h.time) AS time, o.version AS model_version, countIf(h.action = 'overridden') / count() AS override_rate " +
						"FROM (SELECT decision_id, time, human_action AS action FROM events WHERE $__timeFilter(time) AND layer = 'human' AND event = 'human.action' " +
						"AND human_action != '' AND " + wf("workflow") + ") AS h INNER JOIN (SELECT decision_id, any(model_version) AS version FROM events " +
						"WHERE time >= $__fromTime - INTERVAL 1 DAY AND time <= $__toTime AND layer = 'model' AND event = 'model.output' AND model_version != '' AND " +
						wf("workflow") + " AND " + mv("model_version") + " GROUP BY decision_id) AS o USING (decision_id) GROUP BY time, model_version ORDER BY time",
					Columns: []string{"time", "model_version", "override_rate"}},
				{Kind: TimeSeries, Title: "Actions", W: 12, Unit: "short",
					Question: "Accepted, modified, overridden, ignored, escalated: how many of each?",
					SQL: "SELECT $__timeInterval(time) AS time, human_action, count() AS actions FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'human' AND event = 'human.action' AND human_action != '' AND " + wf("workflow") + " GROUP BY time, human_action ORDER BY time",
					Columns: []string{"time", "human_action", "actions"}},
				{Kind: TimeSeries, Title: "Time to action (median)", W: 12, Unit: "s",
					Question: "How long do recommendations wait for a person?",
					SQL: "SELECT $__timeInterval(h.time) AS time, h.workflow AS workflow, quantile(0.5)(dateDiff('millisecond', o.output_time, h.time) / 1000) AS median_s " +
						"FROM (SELECT decision_id, workflow, time FROM events WHERE $__timeFilter(time) AND layer = 'human' AND event = 'human.action' AND " + wf("workflow") + ") AS h " +
						"INNER JOIN (SELECT decision_id, min(time) AS output_time FROM events WHERE time >= $__fromTime - INTERVAL 1 DAY AND time <= $__toTime " +
						"AND layer = 'model' AND event = 'model.output' GROUP BY decision_id) AS o USING (decision_id) GROUP BY time, workflow ORDER BY time",
					Columns: []string{"time", "workflow", "median_s"}},
				{Kind: Table, Title: "Reviewers", W: 24, H: 9, Unit: "short",
					ColumnUnits: map[string]string{"override_rate": "percentunit", "ignore_rate": "percentunit", "escalate_rate": "percentunit"},
					Question:    "Which reviewers override, ignore or escalate most?",
					SQL: "SELECT human_actor AS reviewer, count() AS actions, countIf(human_action = 'overridden') / count() AS override_rate, " +
						"countIf(human_action = 'ignored') / count() AS ignore_rate, countIf(human_action = 'escalated') / count() AS escalate_rate FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'human' AND event = 'human.action' AND human_actor != '' AND " + wf("workflow") + " GROUP BY reviewer ORDER BY actions DESC LIMIT 50",
					Columns: []string{"reviewer", "actions", "override_rate", "ignore_rate", "escalate_rate"}},
			},
		},
		{
			UID: "decisiontrace-business", Title: "decisiontrace: business", Variables: []string{"workflow"},
			Description: "What decisions lead to: outcomes, cycle time, cost, and how long a decision takes from first signal to outcome.",
			Panels: []Panel{
				{Kind: TimeSeries, Title: "Outcomes", W: 12, Unit: "short",
					Question: "Which outcomes do decisions lead to, and is the feed still arriving?",
					SQL: "SELECT $__timeInterval(time) AS time, outcome, count() AS outcomes FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'business' AND event = 'business.outcome' AND outcome != '' AND " + wf("workflow") + " GROUP BY time, outcome ORDER BY time",
					Columns: []string{"time", "outcome", "outcomes"}},
				{Kind: TimeSeries, Title: "Cycle time (median)", W: 12, Unit: "s",
					Question: "How long do cases take end to end?",
					SQL: "SELECT $__timeInterval(time) AS time, workflow, quantile(0.5)(cycle_time_s) AS median_cycle_time_s FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'business' AND event = 'business.outcome' AND cycle_time_s IS NOT NULL AND " + wf("workflow") + " GROUP BY time, workflow ORDER BY time",
					Columns: []string{"time", "workflow", "median_cycle_time_s"}},
				{Kind: TimeSeries, Title: "Cost", W: 12, Unit: "short",
					Question: "What do the decisions' outcomes cost per interval?",
					SQL: "SELECT $__timeInterval(time) AS time, workflow, sum(business_cost) AS cost FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'business' AND business_cost IS NOT NULL AND " + wf("workflow") + " GROUP BY time, workflow ORDER BY time",
					Columns: []string{"time", "workflow", "cost"}},
				{Kind: TimeSeries, Title: "Decision latency (first signal to outcome, median, by outcome time)", W: 12, Unit: "s",
					Question: "How long from a decision's first signal to its business outcome?",
					// Per outcome in the range, from the decision's first context
					// read or output up to a day before.
					SQL: "SELECT $__timeInterval(b.time) AS time, b.workflow AS workflow, quantile(0.5)(dateDiff('millisecond', f.first_time, b.time) / 1000) AS latency_s " +
						"FROM (SELECT decision_id, workflow, time FROM events WHERE $__timeFilter(time) AND layer = 'business' AND event = 'business.outcome' AND " + wf("workflow") + ") AS b " +
						"INNER JOIN (SELECT decision_id, min(time) AS first_time FROM events WHERE time >= $__fromTime - INTERVAL 1 DAY AND time <= $__toTime " +
						"AND layer IN ('data', 'model') AND " + wf("workflow") + " GROUP BY decision_id) AS f USING (decision_id) GROUP BY time, workflow ORDER BY time",
					Columns: []string{"time", "workflow", "latency_s"}},
			},
		},
		{
			UID: "decisiontrace-explorer", Title: "decisiontrace: decision explorer", Variables: []string{"workflow", "decision_id"},
			Description: "One decision across the five layers, with its verdict. Alert links land here with the workflow and an example decision filled in.",
			Panels: []Panel{
				{Kind: Table, Title: "Verdict", W: 24, H: 5,
					Question: "What did decisiontrace conclude about this decision?",
					SQL: "SELECT decision_id, workflow, layers_seen, model_version, confidence, verdict_context, verdict_behaviour, unsupported_certainty, human_action, outcome " +
						"FROM decision_summary WHERE decision_id = ${decision_id:sqlstring} AND decision_id != ''",
					Columns: []string{"decision_id", "workflow", "layers_seen", "model_version", "confidence", "verdict_context", "verdict_behaviour",
						"unsupported_certainty", "human_action", "outcome"}},
				{Kind: Table, Title: "Timeline", W: 24, H: 12,
					Question: "What happened to this decision, layer by layer, in order?",
					SQL: "SELECT time, layer, event, source, as_of, model_version, confidence, recommendation, route, queue, human_action, human_actor, outcome, " +
						"verdict_context, verdict_behaviour FROM events WHERE decision_id = ${decision_id:sqlstring} AND decision_id != '' " +
						// The rollup (ordered by decision_id) bounds the time, so
						// ClickHouse skips the other days.
						"AND time >= (SELECT min(first_seen) FROM decisions WHERE decision_id = ${decision_id:sqlstring}) " +
						"AND time <= (SELECT max(last_seen) FROM decisions WHERE decision_id = ${decision_id:sqlstring}) " +
						"ORDER BY time, " + layerOrder + ", event = 'decision.verdict'",
					Columns: []string{"time", "layer", "event", "source", "as_of", "model_version", "confidence", "recommendation", "route", "queue",
						"human_action", "human_actor", "outcome", "verdict_context", "verdict_behaviour"}},
				{Kind: Table, Title: "Recent decisions confident on stale or missing context", W: 24, H: 10,
					Question: "Which decisions to open first?",
					SQL: "SELECT time, decision_id, workflow, verdict_context, verdict_stale_source, verdict_behaviour FROM events " +
						"WHERE $__timeFilter(time) AND layer = 'model' AND event = 'decision.verdict' AND verdict_unsupported AND " + wf("workflow") + " ORDER BY time DESC LIMIT 100",
					Columns: []string{"time", "decision_id", "workflow", "verdict_context", "verdict_stale_source", "verdict_behaviour"}},
			},
		},
	}
}
