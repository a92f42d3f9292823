// Package alertmanagerexporter sends the alert records of decisiontrace's
// rule evaluator (log records with alert.* attributes) to every configured
// Prometheus Alertmanager through its API v2, the way Prometheus does: firing
// alerts are re-sent every resend interval with endsAt set ahead, so that
// they expire by themselves when the collector stops sending, and resolved
// alerts are sent with an explicit endsAt.
package alertmanagerexporter // import "github.com/decisiontrace/decisiontrace/exporters/alertmanagerexporter"
