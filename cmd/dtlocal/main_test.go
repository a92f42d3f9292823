package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/api/v2/models"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/decisiontrace/decisiontrace/internal/amtest"
	"github.com/decisiontrace/decisiontrace/internal/chlocal"
)

// The built-in copy is what users outside the repository run; it must not
// drift from the reviewed file.
func TestBuiltinAlertmanagerConfigMatchesRepository(t *testing.T) {
	b, err := os.ReadFile("../../deploy/local/alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != builtinAlertmanagerConfig {
		t.Fatal("cmd/dtlocal/alertmanager_config.go differs from deploy/local/alertmanager.yml; copy the file into the constant")
	}
}

func amtool(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("amtool")
	if err != nil {
		t.Fatalf("amtool is missing (apt-get install -y prometheus-alertmanager): %v", err)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("amtool %v: %v: %s", args, err, out)
	}
	return string(out)
}

func TestAlertmanagerConfigIsValid(t *testing.T) {
	amtool(t, "check-config", "../../deploy/local/alertmanager.yml")
}

// The shipped routing sends each team's alerts to that team, pages only
// for severity page, and sends the evaluator's own alerts to the platform
// team whatever the rule's team.
func TestAlertmanagerRoutesByTeamAndSeverity(t *testing.T) {
	for _, tt := range []struct {
		labels   []string
		receiver string
	}{
		{[]string{"alertname=DecisionSourceStale", "team=claims-oncall", "severity=page", "workflow=claims-triage"}, "claims-pager"},
		{[]string{"alertname=ClaimsReviewQueueDeep", "team=claims-ops", "severity=ticket", "workflow=claims-triage"}, "claims-tickets"},
		{[]string{"alertname=DecisionOverrideRate", "team=lending-oncall", "severity=page", "workflow=loan-underwriting"}, "lending-pager"},
		{[]string{"alertname=DecisionOverrideRate", "team=lending-oncall", "severity=ticket", "workflow=loan-underwriting"}, "lending-tickets"},
		{[]string{"alertname=ModelConfidenceDrift", "team=ml-platform", "severity=ticket", "workflow=claims-triage"}, "ml-platform-tickets"},
		{[]string{"alertname=YourOwnRule", "team=decision-platform", "severity=page", "workflow=claims-triage"}, "decision-platform-pager"},
		{[]string{"alertname=DecisionRuleFailing", "team=claims-oncall", "severity=page", "rule=DecisionSourceStale"}, "decision-platform-tickets"},
		{[]string{"alertname=DecisionRuleNoData", "team=lending-oncall", "severity=page", "rule=DecisionOverrideRate"}, "decision-platform-tickets"},
		{[]string{"alertname=DecisionRuleFailing", "severity=ticket", "rule=DecisionSourceStale", "workflow=claims-triage"}, "decision-platform-tickets"},
		{[]string{"alertname=DecisionStoreUnavailable", "severity=page", "database=decisiontrace"}, "decision-platform-pager"},
		{[]string{"alertname=DecisionWorkflowSilent", "team=claims-oncall", "severity=ticket", "workflow=claims-triage"}, "claims-tickets"},
		{[]string{"alertname=SomethingElse", "team=nobody-we-know", "severity=page"}, "decision-platform-tickets"},
	} {
		args := append([]string{"config", "routes", "test", "--config.file=../../deploy/local/alertmanager.yml", "--verify.receivers=" + tt.receiver}, tt.labels...)
		amtool(t, args...)
	}
}

// The shipped configuration inhibits what one cause explains: a workflow
// making no decisions silences its layer, staleness and no-data alerts; a
// store that cannot be queried silences the rule-failing ones. Read from a
// real Alertmanager running it.
func TestAlertmanagerInhibitsWhatOneCauseExplains(t *testing.T) {
	b, err := os.ReadFile("../../deploy/local/alertmanager.yml")
	require.NoError(t, err)
	am := amtest.StartWith(t, string(b))
	now := time.Now()
	alerts := models.PostableAlerts{}
	for _, labels := range []models.LabelSet{
		{"alertname": "DecisionWorkflowSilent", "workflow": "claims-triage", "team": "claims-oncall", "severity": "ticket"},
		{"alertname": "DecisionLayerSilent", "workflow": "claims-triage", "layer": "human", "team": "claims-oncall", "severity": "page"},
		{"alertname": "DecisionSourceStale", "workflow": "claims-triage", "source": "policy-db", "team": "claims-oncall", "severity": "page"},
		{"alertname": "DecisionRuleNoData", "workflow": "claims-triage", "rule": "DecisionOverrideRate", "severity": "ticket"},
		{"alertname": "DecisionSourceStale", "workflow": "loan-underwriting", "source": "credit-bureau", "team": "lending-oncall", "severity": "page"},
		{"alertname": "DecisionStoreUnavailable", "database": "decisiontrace", "severity": "page"},
		{"alertname": "DecisionRuleFailing", "workflow": "loan-underwriting", "rule": "DecisionOverrideRate", "severity": "ticket"},
		{"alertname": "DecisionSLOBurnFast", "workflow": "loan-underwriting", "slo": "fresh", "sli": "fresh_context", "team": "lending-oncall", "severity": "page"},
		{"alertname": "DecisionSLOBurnSlow", "workflow": "loan-underwriting", "slo": "safe", "sli": "safe_outputs", "team": "lending-oncall", "severity": "ticket"},
		{"alertname": "DecisionUnsupportedCertainty", "workflow": "fraud-screening", "team": "fraud-oncall", "severity": "page"},
		{"alertname": "DecisionSLOBurnSlow", "workflow": "fraud-screening", "slo": "fresh", "sli": "fresh_context", "team": "fraud-oncall", "severity": "ticket"},
	} {
		alerts = append(alerts, &models.PostableAlert{Alert: models.Alert{Labels: labels},
			StartsAt: strfmt.DateTime(now), EndsAt: strfmt.DateTime(now.Add(time.Hour))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = am.Client().Alert.PostAlerts(alert.NewPostAlertsParamsWithContext(ctx).WithAlerts(alerts))
	require.NoError(t, err)
	want := map[string]bool{
		"DecisionWorkflowSilent/claims-triage":  false,
		"DecisionLayerSilent/claims-triage":     true,
		"DecisionSourceStale/claims-triage":     true,
		"DecisionRuleNoData/claims-triage":      true,
		"DecisionSourceStale/loan-underwriting": false, // another workflow still decides
		"DecisionStoreUnavailable/":             false,
		"DecisionRuleFailing/loan-underwriting": true,
		// The stale source explains the fresh-context SLO's burn, not
		// the safe-outputs one's.
		"DecisionSLOBurnFast/loan-underwriting": true,
		"DecisionSLOBurnSlow/loan-underwriting": false,
		// Confident output on stale context is the same cause.
		"DecisionUnsupportedCertainty/fraud-screening": false,
		"DecisionSLOBurnSlow/fraud-screening":          true,
	}
	// Alertmanager's inhibitor takes posted alerts in asynchronously: an
	// alert read back at once may not be marked yet.
	var inhibited map[string]bool
	ok := assert.Eventually(t, func() bool {
		got, err := am.Alerts()
		require.NoError(t, err)
		inhibited = map[string]bool{}
		for _, a := range got {
			inhibited[a.Labels["alertname"]+"/"+a.Labels["workflow"]] = len(a.Status.InhibitedBy) > 0
		}
		return maps.Equal(want, inhibited)
	}, 10*time.Second, 100*time.Millisecond)
	assert.True(t, ok && maps.Equal(want, inhibited), "inhibited: %v, want %v", inhibited, want)
}

func TestRepoRoot(t *testing.T) {
	wd, _ := os.Getwd()
	root := repoRoot(wd)
	if root == "" || root != filepath.Clean(filepath.Join(wd, "../..")) {
		t.Fatalf("repoRoot(%s) = %q", wd, root)
	}
	if got := repoRoot(t.TempDir()); got != "" {
		t.Fatalf("outside the repository: %q", got)
	}
}

func TestRunningPIDRejectsStrangers(t *testing.T) {
	f := filepath.Join(t.TempDir(), "x.pid")
	if err := os.WriteFile(f, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := runningPID(f, isChlocal); ok {
		t.Fatal("pid 1 taken for a ClickHouse server")
	}
	if _, ok := runningPID(filepath.Join(t.TempDir(), "none.pid"), isAlertmanager); ok {
		t.Fatal("missing pid file taken as running")
	}
}

// fetch --engine installs that version from the cached tarball beside the
// default engine and prints the library's path, and only that, on stdout.
func TestFetchEnginePrintsItsPath(t *testing.T) {
	home := t.TempDir()
	t.Setenv(chlocal.HomeEnv, home)
	t.Setenv("PATH", "") // no npm and no network: the cached tarball must do
	if err := os.MkdirAll(filepath.Join(home, "cache"), 0o755); err != nil {
		t.Fatal(err)
	}
	tgz, err := os.Create(filepath.Join(home, "cache", "chdb-lib-linux-x64-gnu-26.5.0.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(tgz)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: chlocal.PackageFile, Mode: 0o755, Size: 3, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte("old")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []interface{ Close() error }{tw, zw, tgz} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	log = zerolog.Nop()
	var out bytes.Buffer
	if err := fetch([]string{"--engine", "26.5.0"}, &out); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(home, "lib", "26.5.0", "libchdb.so")
	if out.String() != want+"\n" {
		t.Fatalf("stdout %q, want the path %s", out.String(), want)
	}

	out.Reset()
	err = fetch([]string{"--engine", "newest"}, &out)
	if err == nil || !strings.Contains(err.Error(), `"newest" is not a version of @chdb/lib-linux-x64-gnu`) || out.Len() != 0 {
		t.Fatalf("err = %v, stdout %q", err, out.String())
	}
}
