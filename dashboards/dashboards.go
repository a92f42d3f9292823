// Package dashboards generates decisiontrace's Grafana dashboards as code
// with the Grafana foundation SDK, for the grafana-clickhouse-datasource
// plugin. The JSON files next to this file are its output: `go run
// ./cmd/dtdashboards` writes them, and a test fails when they are stale or
// when a panel's SQL does not run on ClickHouse.
package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/barchart"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Kind is a panel's visualization.
type Kind int

const (
	TimeSeries Kind = iota
	Stat
	Table
	BarChart
)

// Panel is one panel: the question it answers and the SQL that answers it.
type Panel struct {
	Kind     Kind
	Title    string
	Question string // the panel's description, and its line in the README
	SQL      string
	Unit     string
	// Columns are the columns the query returns, in order; the test runs
	// the query and compares.
	Columns []string
	// Thresholds are the values where the color turns orange, then red;
	// on time series they are drawn as dashed lines.
	Thresholds []float64
	// ColumnUnits override Unit for some columns of a table.
	ColumnUnits map[string]string
	// Matrix turns long rows (row, column, value) into one bar series per
	// column value (Grafana's groupingToMatrix), for bar charts.
	Matrix *[3]string
	W, H   int
}

// Spec is one dashboard.
type Spec struct {
	UID, Title, Description string
	// Variables among workflow, model_version, source, decision_id.
	Variables []string
	Panels    []Panel
}

// Variable queries: the values offered for each template variable.
var variableSQL = map[string]string{
	"workflow":      "SELECT DISTINCT workflow FROM events WHERE $__timeFilter(time) AND workflow != '' ORDER BY workflow",
	"model_version": "SELECT DISTINCT model_version FROM events WHERE $__timeFilter(time) AND layer = 'model' AND model_version != '' AND " + wf("workflow") + " ORDER BY model_version",
	"source":        "SELECT DISTINCT source FROM events WHERE $__timeFilter(time) AND layer = 'data' AND source != '' AND " + wf("workflow") + " ORDER BY source",
}

// AnnotationSQL puts every alert state change of the selected workflows on
// the dashboards' time axis.
const AnnotationSQL = "SELECT time, concat(alertname, ' ', state, ': ', annotations['summary']) AS text, [alertname, state] AS tags " +
	"FROM alert_history WHERE $__timeFilter(time) AND $__conditionalAll(labels['workflow'] IN (${workflow:singlequote}), $workflow) ORDER BY time"

// AnnotationColumns are the columns of AnnotationSQL.
var AnnotationColumns = []string{"time", "text", "tags"}

// VariableSQL returns a template variable's query; ok is false for a
// textbox variable.
func VariableSQL(name string) (string, bool) {
	s, ok := variableSQL[name]
	return s, ok
}

func wf(col string) string {
	return "$__conditionalAll(" + col + " IN (${workflow:singlequote}), $workflow)"
}

func mv(col string) string {
	return "$__conditionalAll(" + col + " IN (${model_version:singlequote}), $model_version)"
}

func src(col string) string {
	return "$__conditionalAll(" + col + " IN (${source:singlequote}), $source)"
}

// Build turns a spec into a Grafana dashboard.
func Build(s Spec) (dashboard.Dashboard, error) {
	b := dashboard.NewDashboardBuilder(s.Title).Uid(s.UID).Description(s.Description).
		Tags([]string{"decisiontrace"}).Time("now-6h", "now").Refresh("1m").Timezone("browser").
		Link(dashboard.NewDashboardLinkBuilder("decisiontrace").Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{"decisiontrace"}).AsDropdown(true).IncludeVars(true).KeepTime(true)).
		Annotation(dashboard.NewAnnotationQueryBuilder().Name("Alerts").Datasource(datasource()).Enable(true).
			IconColor("red").Target(query(AnnotationSQL, true)))
	for _, v := range s.Variables {
		if v == "decision_id" {
			b = b.WithVariable(dashboard.NewTextBoxVariableBuilder(v).Label("Decision ID").
				DefaultValue(dashboard.StringOrMap{String: cog.ToPtr("")}))
			continue
		}
		sql := variableSQL[v]
		b = b.WithVariable(dashboard.NewQueryVariableBuilder(v).Label(v).Datasource(datasource()).
			Query(dashboard.StringOrMap{Map: map[string]any{"refId": "A", "queryType": "sql", "editorType": "sql", "rawSql": sql}}).
			Definition(sql).Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Sort(dashboard.VariableSortAlphabeticalAsc).Multi(true).IncludeAll(true))
	}
	x, y, rowH := 0, 0, 0
	for i, p := range s.Panels {
		w, h := p.W, p.H
		if w == 0 {
			w = 12
		}
		if h == 0 {
			h = 8
		}
		if x+w > 24 {
			x, y, rowH = 0, y+rowH, 0
		}
		pos := dashboard.GridPos{X: uint32(x), Y: uint32(y), W: uint32(w), H: uint32(h)}
		x += w
		rowH = max(rowH, h)
		b = b.WithPanel(panel(uint32(i+1), p, pos))
	}
	return b.Build()
}

func thresholds(values []float64) *dashboard.ThresholdsConfigBuilder {
	steps := []dashboard.Threshold{{Value: nil, Color: "green"}}
	for i, v := range values {
		steps = append(steps, dashboard.Threshold{Value: cog.ToPtr(v), Color: []string{"orange", "red"}[min(i, 1)]})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(steps)
}

func panel(id uint32, p Panel, pos dashboard.GridPos) cog.Builder[dashboard.Panel] {
	switch p.Kind {
	case Stat:
		return stat.NewPanelBuilder().Id(id).Title(p.Title).Description(p.Question).Datasource(datasource()).GridPos(pos).
			Unit(p.Unit).Thresholds(thresholds(p.Thresholds)).ColorMode(common.BigValueColorModeBackground).
			GraphMode(common.BigValueGraphModeNone).Orientation(common.VizOrientationAuto).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
			WithTarget(query(p.SQL, true))
	case Table:
		tb := table.NewPanelBuilder().Id(id).Title(p.Title).Description(p.Question).Datasource(datasource()).GridPos(pos).
			Unit(p.Unit).Thresholds(thresholds(p.Thresholds)).WithTarget(query(p.SQL, true))
		cols := make([]string, 0, len(p.ColumnUnits))
		for c := range p.ColumnUnits {
			cols = append(cols, c)
		}
		sort.Strings(cols)
		for _, c := range cols {
			tb = tb.OverrideByName(c, []dashboard.DynamicConfigValue{{Id: "unit", Value: p.ColumnUnits[c]}})
		}
		return tb
	case BarChart:
		bb := barchart.NewPanelBuilder().Id(id).Title(p.Title).Description(p.Question).Datasource(datasource()).GridPos(pos).
			Unit(p.Unit).Thresholds(thresholds(p.Thresholds)).XField(p.Columns[0]).
			Legend(common.NewVizLegendOptionsBuilder().ShowLegend(true).DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom)).
			WithTarget(query(p.SQL, true))
		if m := p.Matrix; m != nil {
			bb = bb.WithTransformation(dashboard.DataTransformerConfig{Id: "groupingToMatrix",
				Options: map[string]any{"rowField": m[0], "columnField": m[1], "valueField": m[2]}})
		}
		return bb
	}
	tb := timeseries.NewPanelBuilder().Id(id).Title(p.Title).Description(p.Question).Datasource(datasource()).GridPos(pos).
		Unit(p.Unit).Thresholds(thresholds(p.Thresholds)).
		Legend(common.NewVizLegendOptionsBuilder().ShowLegend(true).DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom)).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending)).
		WithTarget(query(p.SQL, false))
	if len(p.Thresholds) > 0 {
		tb = tb.ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed))
	}
	return tb
}

// Generate returns every dashboard's JSON by file name: the exact bytes
// committed in this directory.
func Generate() (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, s := range Specs() {
		d, err := Build(s)
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", s.UID, err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", s.UID, err)
		}
		out[s.UID+".json"] = buf.Bytes()
	}
	return out, nil
}

// Readme is dashboards/README.md: per dashboard, the question each panel
// answers.
func Readme() []byte {
	var b bytes.Buffer
	b.WriteString("# dashboards\n\n")
	b.WriteString("Grafana dashboards for the grafana-clickhouse-datasource plugin (v4 query\n")
	b.WriteString("model), generated as code from `specs.go` with the Grafana foundation SDK:\n")
	b.WriteString("`go run ./cmd/dtdashboards` rewrites the JSON files and this README, and\n")
	b.WriteString("`go test ./dashboards/` fails when they are stale, when a panel's SQL\n")
	b.WriteString("(macros and template variables expanded as the plugin expands them) does\n")
	b.WriteString("not return the columns the panel expects on a real ClickHouse, or when any\n")
	b.WriteString("panel, variable or annotation returns anything else on a store where every\n")
	b.WriteString("request was delivered twice (some three times) than on one where each was\n")
	b.WriteString("delivered once.\n\n")
	b.WriteString("Grafana loads them through `deploy/grafana/provisioning` (datasource UID\n")
	b.WriteString("`" + DatasourceUID + "`, default database `decisiontrace`). Every dashboard has\n")
	b.WriteString("the alert history as annotations and links to the others, keeping the time\n")
	b.WriteString("range and variables.\n\n")
	b.WriteString("How they count:\n\n")
	b.WriteString("- Verdicts come from the store: `verdicts FINAL` (one row per decision,\n")
	b.WriteString("  as the rule evaluator last judged it) wherever many decisions are\n")
	b.WriteString("  counted, by decision time; `decision_verdicts` (judged live) for the\n")
	b.WriteString("  explorer's one decision. Pending decisions (required context that may\n")
	b.WriteString("  still be on its way) are shown as such and left out of the rates.\n")
	b.WriteString("- A producer that resends its requests stores the same events again (same\n")
	b.WriteString("  `event_id`, other inserts), and changes no number: panels over `events`\n")
	b.WriteString("  count distinct event IDs or decisions (`uniqExact`), take levels with\n")
	b.WriteString("  `max`/`argMax`, and sum, average or take quantiles over distinct events:\n")
	b.WriteString("  model outputs from the store's `model_outputs FINAL` (each output once),\n")
	b.WriteString("  other layers with `LIMIT 1 BY event_id` (several times the cost of a\n")
	b.WriteString("  plain aggregate over the same rows: those panels are the slowest).\n")
	b.WriteString("- Budgets are those of the contracts in force (`contract_sources`); read\n")
	b.WriteString("  lag is the store's `read_lag` against the contract's `max_context_lag`.\n")
	for _, s := range Specs() {
		fmt.Fprintf(&b, "\n## %s (`%s`)\n\n%s\n\n", s.Title, s.UID, s.Description)
		fmt.Fprintf(&b, "Variables: %s.\n\n| panel | answers |\n| --- | --- |\n", strings.Join(s.Variables, ", "))
		for _, p := range s.Panels {
			fmt.Fprintf(&b, "| %s | %s |\n", p.Title, p.Question)
		}
	}
	return b.Bytes()
}

// Files lists Generate's file names in order.
func Files(m map[string][]byte) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
