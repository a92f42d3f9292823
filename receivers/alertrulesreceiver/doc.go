// Package alertrulesreceiver evaluates decisiontrace's alerting rules over
// the decision store in ClickHouse and emits an alert record at every state
// change (pending, firing, resolved), as Prometheus evaluates alerting
// rules. Rules come from rule files and, without anyone writing them, from
// each workflow's dependency contract. Alert state is persisted in
// ClickHouse, so a restarted collector neither re-pages nor forgets; a
// failing rule query and a rule without data are alerts of their own,
// never a silent resolve.
package alertrulesreceiver // import "github.com/decisiontrace/decisiontrace/receivers/alertrulesreceiver"
