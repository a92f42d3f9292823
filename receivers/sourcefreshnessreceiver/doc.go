// Package sourcefreshnessreceiver polls the context sources AI workflows
// depend on (PostgreSQL, MySQL/MariaDB and ClickHouse queries, HTTP JSON
// status endpoints) for the time of their last update, and emits one
// source.freshness log record per poll on the data layer: data.as_of,
// data.age_s and data.available=true, or data.available=false with
// data.error when the source cannot be read. Optionally it polls queue
// depths the same way and emits queue.depth records on the workflow layer.
//
// It is a plain receiver with one goroutine per source rather than a
// scraperhelper controller: in v0.165.0 a controller has one collection
// interval and one timeout, and calls its scrapers one after another in a
// single goroutine, so a slow source would delay every other one and
// per-source intervals would need one controller (and one receiver) per
// source. Here each source has its own ticker and timeout, and Shutdown
// cancels the polls in flight instead of waiting for them.
package sourcefreshnessreceiver // import "github.com/decisiontrace/decisiontrace/receivers/sourcefreshnessreceiver"
