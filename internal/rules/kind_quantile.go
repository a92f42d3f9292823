package rules

import (
	"strings"
)

// quantile: a percentile of a numeric convention against a limit, per
// workflow and the conventions in by: model latency p95 by model version,
// business cycle time p95, tokens or cost per output.
//
//	kind: quantile
//	value: model.latency_ms
//	quantile: 0.95
//	denominator: {decision.event: model.output}
//	by: [model.version]
//	max: 2000
func init() {
	register(map[Kind]*kindSpec{KindQuantile: {
		check: checkQuantile,
		// Percentiles of the same signals over one window (a model's
		// latency and token counts, an outcome's cycle time and cost):
		// one scan.
		together: func(r *Rule) string {
			rs := r.ratioSQL(ignore)
			return togetherKey("quantile", r.Window, r.Workflow, rs.denominator, rs.denArgs, rs.labels)
		},
		merged:            quantileQuery,
		examples:          quantileExamples,
		summary:           `{{ .Labels.workflow }}: {{ printf "%.0f" .Value }} is over the rule's limit`,
		heldBackBySilence: true,
	}})
}

func checkQuantile(r *Rule, bad problem) {
	needWindow(r, bad)
	if r.Quantile <= 0 || r.Quantile >= 1 {
		bad("quantile", "%v is outside (0, 1), e.g. 0.95", r.Quantile)
	}
	if _, ok := quantileValue(r); !ok {
		bad("value", "%q is not a numeric convention (model.latency_ms, business.cycle_time_s, gen_ai.usage.input_tokens, ...)", r.Value)
	}
	if len(r.Denominator) == 0 {
		bad("denominator", "required: which signals the value is read from (e.g. {decision.event: model.output})")
	}
	if len(r.Numerator) > 0 {
		bad("numerator", "a quantile rule has none")
	}
	events := *r
	if r.Count != "" {
		bad("count", "a quantile rule has none: it reads each stored event once")
		events.Count = "" // its filters are still on events
	}
	events.ratioSQL(bad)
}

// quantileValue is the column of the rule's value, if it is numeric.
func quantileValue(r *Rule) (string, bool) {
	col, typ, ok := ratioColumn(r.Value)
	return col, ok && (strings.Contains(typ, "Float") || strings.Contains(typ, "Int"))
}

func quantileQuery(rules []*Rule, db string, f *filters) (string, []any) {
	r := rules[0]
	rs := r.ratioSQL(ignore)
	f.on("workflow", r.Workflow)
	inner, innerArgs := rs.labelAs("any(%s)", "l_", f)
	outer := rs.outerLabels()
	// Each stored event once: a resent output is one latency, not two.
	// The signals are the data, with a value or not (count(v) and the
	// quantile skip the ones without): a workflow whose outputs carry no
	// token counts has outputs to judge, and none over the limit.
	var values, cols []string
	var args []any
	for i, ri := range rules {
		col, _ := quantileValue(ri)
		v, value := resultColumn("v", i, len(rules)), resultColumn("value", i, len(rules))
		values = append(values, `any(toFloat64(`+col+`)) AS `+v)
		cols = append(cols, `ifNull(`+percentile(ri.Quantile)+`(`+v+`), 0) AS `+value+
			`, toUInt8(count(`+v+`) >= ? AND `+value+` > ?) AS `+resultColumn(firingColumn, i, len(rules)))
		args = append(args, ri.MinCount, ri.Max)
	}
	q := `SELECT ` + strings.Join(outer, ", ") + `, ` + strings.Join(cols, ", ") + `
FROM (
  SELECT event_id, ` + strings.Join(inner, ", ") + `, ` + strings.Join(values, ", ") + `
  FROM ` + db + `.events
  WHERE ` + rs.denominator + rs.within() + f.and() + `
  GROUP BY event_id
)
GROUP BY ` + strings.Join(rs.labels, ", ") + groupsOnly
	args = append(args, innerArgs...)
	args = append(args, rs.denArgs...)
	args = append(args, seconds(r.Window))
	return q, append(args, f.args...)
}

// The latest decisions of the alert's labels whose value is over the limit.
func quantileExamples(r *Rule, db string, labels map[string]string, n int) (string, []any) {
	rs := r.ratioSQL(ignore)
	col, _ := quantileValue(r)
	match, matchArgs := rs.matchLabels(labels)
	args := append(append([]any{}, rs.denArgs...), r.Max, windowOrHour(r))
	args = append(args, matchArgs...)
	q := `SELECT decision_id FROM ` + db + `.events
WHERE ` + rs.denominator + ` AND decision_id != '' AND ` + col + ` > ?` + rs.within() + match + `
GROUP BY decision_id
ORDER BY max(time) DESC, decision_id
LIMIT ?`
	return q, append(args, n)
}
