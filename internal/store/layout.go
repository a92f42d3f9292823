package store

import (
	"fmt"
	"strings"

	"github.com/decisiontrace/decisiontrace/internal/chconn"
)

// Layout is how the schema's tables sit on ClickHouse: on one server (the
// zero value), or on a cluster, where every table is a local table on each
// shard (replicated when asked) behind a Distributed table of the usual
// name. The per-decision tables are sharded by decision ID, so a decision's
// events, its rollup row and its verdict meet on one shard; materialized
// views work on each shard's local tables; views read the Distributed ones.
type Layout struct {
	Cluster    string // empty: one server
	Replicated bool
}

func (l Layout) onCluster() string {
	if l.Cluster == "" {
		return ""
	}
	return " ON CLUSTER " + l.Cluster
}

// local names the table that holds a table's rows on this server: the
// table itself on one server, its _local table on a cluster. Materialized
// views read and write local tables.
func (l Layout) local(db, table string) string {
	if l.Cluster == "" {
		return db + "." + table
	}
	return db + "." + table + "_local"
}

// ClusterConfig is the configuration shape of a clustered store, shared by
// every component that opens one.
type ClusterConfig struct {
	// Name is a cluster of the servers' remote_servers configuration.
	Name string `mapstructure:"name"`
	// Replicated makes the local tables Replicated*MergeTree, which needs
	// Keeper and the {shard} and {replica} macros on every server.
	Replicated bool `mapstructure:"replicated"`
	// prevent unkeyed literal initialization
	_ struct{}
}

// Validate checks the name, which is spliced into DDL.
func (c *ClusterConfig) Validate() error {
	if !chconn.Identifier(c.Name) {
		return fmt.Errorf("name: %q is not a plain identifier", c.Name)
	}
	return nil
}

// LayoutOf is the layout a cluster configuration asks for; nil: one server.
func LayoutOf(c *ClusterConfig) Layout {
	if c == nil {
		return Layout{}
	}
	return Layout{Cluster: c.Name, Replicated: c.Replicated}
}

// table is one table of the schema.
type table struct {
	name    string
	columns string // what goes between the parentheses of CREATE TABLE
	// engine is a MergeTree-family engine with its arguments, e.g.
	// "ReplacingMergeTree(updated_at)".
	engine string
	// tail is what follows the engine: PARTITION BY, ORDER BY, TTL, SETTINGS.
	tail string
	// shardBy is the Distributed table's sharding key on a cluster.
	shardBy string
}

// create renders CREATE TABLE statements for the layout.
func (l Layout) create(db string, t table) []string {
	body := " (\n" + strings.TrimSpace(t.columns) + "\n) ENGINE = "
	if l.Cluster == "" {
		return []string{"CREATE TABLE IF NOT EXISTS " + db + "." + t.name + body + t.engine + "\n" + t.tail}
	}
	engine, tail := t.engine, t.tail
	if l.Replicated {
		engine = replicatedEngine(engine)
		tail = strings.ReplaceAll(tail, "non_replicated_deduplication_window", "replicated_deduplication_window")
	}
	on := l.onCluster()
	return []string{
		"CREATE TABLE IF NOT EXISTS " + db + "." + t.name + "_local" + on + body + engine + "\n" + tail,
		"CREATE TABLE IF NOT EXISTS " + db + "." + t.name + on + " AS " + db + "." + t.name + "_local\n" +
			fmt.Sprintf("ENGINE = Distributed(%s, %s, %s_local, %s)", l.Cluster, db, t.name, t.shardBy),
	}
}

// replicatedEngine turns "XMergeTree(args)" into its Replicated form with the
// conventional Keeper path and replica macro.
func replicatedEngine(engine string) string {
	name, args, _ := strings.Cut(engine, "(")
	args = strings.TrimSuffix(args, ")")
	out := "Replicated" + name + "('/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"
	if args != "" {
		out += ", " + args
	}
	return out + ")"
}

// addColumns renders ALTER TABLE ... ADD COLUMN IF NOT EXISTS for a table
// (both its local and Distributed tables on a cluster).
func (l Layout) addColumns(db, name string, columns ...string) []string {
	return l.alterColumns(db, name, "ADD COLUMN IF NOT EXISTS ", columns)
}

// dropColumns renders ALTER TABLE ... DROP COLUMN IF EXISTS for a table
// (both its local and Distributed tables on a cluster).
func (l Layout) dropColumns(db, name string, columns ...string) []string {
	return l.alterColumns(db, name, "DROP COLUMN IF EXISTS ", columns)
}

// alterColumns renders one ALTER TABLE of a clause per column, prefixed by
// verb, for a table (both its local and Distributed tables on a cluster).
func (l Layout) alterColumns(db, name, verb string, columns []string) []string {
	clauses := make([]string, len(columns))
	for i, c := range columns {
		clauses[i] = verb + c
	}
	clause := strings.Join(clauses, ",\n    ")
	if l.Cluster == "" {
		return []string{"ALTER TABLE " + db + "." + name + "\n    " + clause}
	}
	on := l.onCluster()
	return []string{
		"ALTER TABLE " + db + "." + name + "_local" + on + "\n    " + clause,
		"ALTER TABLE " + db + "." + name + on + "\n    " + clause,
	}
}

// addIndex renders ALTER TABLE ... ADD INDEX IF NOT EXISTS for the table
// that holds a table's rows (its local table on a cluster: a Distributed
// table has no indexes).
func (l Layout) addIndex(db, name, index string) string {
	return "ALTER TABLE " + l.local(db, name) + l.onCluster() + "\n    ADD INDEX IF NOT EXISTS " + index
}

// materializedView renders a materialized view from one local table into
// another; query is its SELECT with {from} for the source table.
func (l Layout) materializedView(db, name, to, from, query string) string {
	return "CREATE MATERIALIZED VIEW IF NOT EXISTS " + db + "." + name + l.onCluster() + " TO " + l.local(db, to) + " AS\n" +
		strings.ReplaceAll(query, "{from}", l.local(db, from))
}

// settleInserts renders a statement that waits 3 s if an insert into a
// table is running (on any server of a cluster): one that began before a
// materialized view was created writes without it, and commits after; a
// copy of the old view's table made right after the new view starts
// would miss its rows. An insert of a sending-queue batch takes well under
// a second; with nothing inserting, it does not wait.
func (l Layout) settleInserts(db, table string) string {
	return "SELECT sleep(if((" + l.runningInserts(db, table) + ") > 0, 3, 0))"
}

// runningInserts counts the inserts into a table (its Distributed or local
// table) running now.
func (l Layout) runningInserts(db, table string) string {
	processes := "system.processes"
	if l.Cluster != "" {
		processes = "clusterAllReplicas('" + l.Cluster + "', system.processes)"
	}
	return "SELECT count() FROM " + processes + " WHERE query_kind = 'Insert' AND positionCaseInsensitive(query, '" + db + "." + table + "') > 0"
}

// view renders a (re)created view; query reads Distributed tables by their
// plain names, {db}-qualified.
func (l Layout) view(db, name, query string) string {
	return "CREATE OR REPLACE VIEW " + db + "." + name + l.onCluster() + " AS\n" + strings.ReplaceAll(query, "{db}", db)
}

// drop renders a DROP of a view or table (and its local table on a cluster).
func (l Layout) drop(db, kind, name string) []string {
	out := []string{"DROP " + kind + " IF EXISTS " + db + "." + name + l.onCluster()}
	if l.Cluster != "" && kind == "TABLE" {
		out = append(out, "DROP TABLE IF EXISTS "+db+"."+name+"_local"+l.onCluster())
	}
	return out
}
