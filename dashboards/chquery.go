package dashboards

import (
	"encoding/json"
	"reflect"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
)

// PluginType is the Grafana ClickHouse plugin's datasource type.
const PluginType = "grafana-clickhouse-datasource"

// DatasourceUID is the datasource deploy/grafana provisions.
const DatasourceUID = "decisiontrace-clickhouse"

// pluginVersion marks targets as the plugin's v4 query model, so the plugin
// does not run its v3 migration on them.
const pluginVersion = "4.0.0"

// Query is a target of the ClickHouse plugin's SQL editor (v4 query model).
// The foundation SDK has no ClickHouse query type; this is one, as its
// custom-query-type guide describes.
type Query struct {
	RefID         string                `json:"refId"`
	Datasource    *common.DataSourceRef `json:"datasource,omitempty"`
	PluginVersion string                `json:"pluginVersion"`
	EditorType    string                `json:"editorType"`
	QueryType     string                `json:"queryType"`
	RawSQL        string                `json:"rawSql"`
	// Format: 0 time series (long rows become one series per label
	// column), 1 table.
	Format int `json:"format"`
}

func (Query) ImplementsDataqueryVariant() {}
func (Query) DataqueryType() string       { return PluginType }
func (Query) Validate() error             { return nil }
func (q Query) Equals(o variants.Dataquery) bool {
	other, ok := o.(Query)
	return ok && reflect.DeepEqual(q, other)
}

// Register makes the SDK decode the plugin's targets as Query.
func Register() {
	un := func(raw []byte) (variants.Dataquery, error) {
		var q Query
		err := json.Unmarshal(raw, &q)
		return q, err
	}
	cog.NewRuntime().RegisterDataqueryVariant(variants.DataqueryConfig{Identifier: PluginType, DataqueryUnmarshaler: un, StrictDataqueryUnmarshaler: un})
}

type queryBuilder struct{ q Query }

var _ cog.Builder[variants.Dataquery] = (*queryBuilder)(nil)

func (b *queryBuilder) Build() (variants.Dataquery, error) { return b.q, nil }

func datasource() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr(PluginType), Uid: cog.ToPtr(DatasourceUID)}
}

func query(sql string, table bool) *queryBuilder {
	ds := datasource()
	q := Query{RefID: "A", Datasource: &ds, PluginVersion: pluginVersion, EditorType: "sql", QueryType: "timeseries", RawSQL: sql}
	if table {
		q.QueryType, q.Format = "table", 1
	}
	return &queryBuilder{q: q}
}
