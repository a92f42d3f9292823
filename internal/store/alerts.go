package store

// The rule evaluator's tables. alert_state holds the latest state of every
// alert instance (a ReplacingMergeTree on updated_at with is_deleted, read
// with FINAL); alert_history keeps every state change, for Grafana
// annotations and audits.

var alertStateTable = table{
	name: "alert_state",
	columns: `
    rule_key String,
    fingerprint UInt64,
    labels Map(String, String),
    state LowCardinality(String),
    value Float64,
    active_at DateTime64(3),
    fired_at DateTime64(3),
    resolved_at DateTime64(3),
    keep_firing_since DateTime64(3),
    updated_at DateTime64(3),
    is_deleted UInt8`,
	engine:  "ReplacingMergeTree(updated_at, is_deleted)",
	tail:    "ORDER BY (rule_key, fingerprint)",
	shardBy: "cityHash64(rule_key, fingerprint)",
}

var alertHistoryTable = table{
	name: "alert_history",
	columns: `
    time DateTime64(3),
    alertname LowCardinality(String),
    fingerprint UInt64,
    state LowCardinality(String),
    value Float64,
    labels Map(String, String),
    annotations Map(String, String)`,
	engine:  "MergeTree",
	tail:    "PARTITION BY toYYYYMM(time)\nORDER BY (alertname, time)",
	shardBy: "fingerprint",
}
