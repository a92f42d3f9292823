package rules

// unresolved_entity_rate: the share of a workflow's context reads whose
// entity ID the decision processor could not resolve to a canonical one,
// per source system (the essay's failure mode 3: identifiers that stop
// agreeing across systems, a CRM migration say). Only reads the processor
// judged count (data.entity.resolved set): a source without alias maps
// has no resolution to fail.
func init() {
	register(map[Kind]*kindSpec{KindUnresolvedEntity: {
		check: func(r *Rule, bad problem) {
			needWindow(r, bad)
			needRate(r, bad)
		},
		query:             unresolvedQuery,
		examples:          unresolvedExamples,
		summary:           `{{ printf "%.0f" (mul100 .Value) }}% of {{ .Labels.workflow }} context reads of {{ .Labels.entity_system }} identifiers did not resolve`,
		heldBackBySilence: true,
	}})
}

// judgedReadsWhere selects the context reads whose entity the processor
// judged, in the rule's window.
const judgedReadsWhere = `layer = 'data' AND event = 'context.read' AND entity_resolved IS NOT NULL
    AND time >= {now} - toIntervalSecond(?) AND time <= {now}`

func unresolvedQuery(r *Rule, db string, f *filters) (string, []any) {
	f.on("workflow", r.Workflow)
	systemsOf(r, f)
	// Each read once (by event ID), however often it was stored; its
	// workflow, system and resolution are the same in every copy.
	q := `SELECT wf AS workflow, sys AS entity_system, countIf(NOT ok) / count() AS value, toUInt8(count() >= ? AND value > ?) AS firing
FROM (
  SELECT event_id, any(workflow) AS wf, any(entity_system) AS sys, any(assumeNotNull(entity_resolved)) AS ok
  FROM ` + db + `.events
  WHERE ` + judgedReadsWhere + f.and() + `
  GROUP BY event_id
)
GROUP BY workflow, entity_system`
	return q, append([]any{r.MinCount, r.MaxRate, seconds(r.Window)}, f.args...)
}

// systemsOf limits f to the rule's entity systems, if it names any.
func systemsOf(r *Rule, f *filters) {
	if len(r.EntitySystems) > 0 {
		f.where = append(f.where, "has(?, toString(entity_system))")
		f.args = append(f.args, r.EntitySystems)
	}
}

// The decisions whose reads of the alert's system did not resolve.
func unresolvedExamples(r *Rule, db string, labels map[string]string, n int) (string, []any) {
	return eventExamples(db, labels, n, windowOrHour(r), func(e *examplesWhere) {
		e.add("layer = 'data'")
		e.add("event = 'context.read'")
		e.add("entity_resolved = false")
		e.match("entity_system", "entity_system")
	})
}
