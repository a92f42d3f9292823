// Package alertmanagerexporter sends the alert records of decisiontrace's
// rule evaluator (log records with alert.* attributes) to every configured
// Prometheus Alertmanager through its API v2, the way Prometheus' notifier
// does: a firing alert goes out with endsAt set ahead (the evaluator sends
// it again every resend interval), so that it expires by itself when the
// collector stops sending, and a resolved one with an explicit endsAt. It
// keeps only the recent resolves, so that a retried firing record overtaken
// by its alert's resolve does not fire it again.
package alertmanagerexporter // import "github.com/decisiontrace/decisiontrace/exporters/alertmanagerexporter"
