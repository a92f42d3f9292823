// Package decisionstoreexporter writes OTLP logs and spans that carry
// decision.* attributes into decisiontrace's own ClickHouse database: a wide
// events table, and a per-decision rollup that ClickHouse maintains itself
// through a materialized view. It creates and migrates that database at
// start.
package decisionstoreexporter // import "github.com/decisiontrace/decisiontrace/exporters/decisionstoreexporter"
