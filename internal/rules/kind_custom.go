package rules

import "strings"

// custom_sql: the operator's own query; {db} names the database and {now}
// the evaluation time. Its rows fire, unless it returns a firing column
// (see firingColumn); it has no examples.
func init() {
	register(map[Kind]*kindSpec{KindCustomSQL: {
		check: func(r *Rule, bad problem) {
			if strings.TrimSpace(r.SQL) == "" {
				bad("sql", "required for kind custom_sql")
			}
		},
		query: func(r *Rule, db string, _ *filters) (string, []any) {
			return strings.ReplaceAll(r.SQL, "{db}", db), nil
		},
	}})
}
