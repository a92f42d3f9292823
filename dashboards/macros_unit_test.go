package dashboards

import (
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The expansion the SQL test relies on, against the plugin's own output for
// from = 1700000000123 ms, to = 1700003600456 ms and a 30 s interval.
func TestExpansionMatchesThePlugin(t *testing.T) {
	e := expansion{from: time.UnixMilli(1700000000123), to: time.UnixMilli(1700003600456), interval: 30 * time.Second,
		vars: map[string][]string{"workflow": {"claims-triage", "o'brien"}, "single": {"x"}, "model_version": nil}}
	for in, want := range map[string]string{
		"$__timeFilter(ts)":      "ts >= toDateTime(1700000000) AND ts <= toDateTime(1700003600)",
		"$__timeFilter_ms(ts)":   "ts >= fromUnixTimestamp64Milli(1700000000123) AND ts <= fromUnixTimestamp64Milli(1700003600456)",
		"$__fromTime $__toTime":  "toDateTime(1700000000) toDateTime(1700003600)",
		"$__interval_s":          "30",
		"$__timeInterval(ts)":    "toStartOfInterval(toDateTime(ts), INTERVAL 30 second)",
		"$__timeInterval_ms(ts)": "toStartOfInterval(toDateTime64(ts, 3), INTERVAL 30000 millisecond)",
		"$__conditionalAll(workflow IN (${workflow:singlequote}), $workflow)":                `workflow IN ('claims-triage','o\'brien')`,
		"$__conditionalAll(model_version IN (${model_version:singlequote}), $model_version)": "1=1",
		"x = ${single:sqlstring} AND y = $single AND z IN ($workflow)":                       "x = 'x' AND y = x AND z IN ('claims-triage','o'brien')",
	} {
		got, err := e.expand(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := e.expand("$__timeFilter(a, b)")
	assert.Error(t, err)
	_, err = e.expand("$__unknownMacro")
	assert.Error(t, err)
}

// A panel's percentile is the exact one the rules page on: quantile()
// and the other estimates sample a large range, so the panel that
// explains an alert would show another p95 than the alert's, and another
// at each refresh.
func TestPanelPercentilesAreTheRulesExactOnes(t *testing.T) {
	calls := regexp.MustCompile(`\bquantile\w*\(`)
	n := 0
	for _, sp := range Specs() {
		for _, p := range sp.Panels {
			for _, call := range calls.FindAllString(p.SQL, -1) {
				n++
				assert.Equal(t, "quantileExactInclusive(", call, "%s / %s", sp.UID, p.Title)
			}
		}
	}
	assert.Positive(t, n, "panels with percentiles")
}
