package amtest

import (
	"context"
	"testing"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/api/v2/models"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func post(t *testing.T, am *Alertmanager, a *models.PostableAlert) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := am.Client().Alert.PostAlerts(alert.NewPostAlertsParamsWithContext(ctx).WithAlerts(models.PostableAlerts{a}))
	return err
}

func TestStartPostReadStopRestart(t *testing.T) {
	am := Start(t)
	got, err := am.Alerts()
	require.NoError(t, err)
	assert.Empty(t, got)

	now := time.Now()
	require.NoError(t, post(t, am, &models.PostableAlert{
		Alert:    models.Alert{Labels: models.LabelSet{"alertname": "AmtestProbe", "team": "x"}},
		StartsAt: strfmt.DateTime(now), EndsAt: strfmt.DateTime(now.Add(time.Minute)),
	}))
	got, err = am.Alerts(`alertname="AmtestProbe"`)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "x", got[0].Labels["team"])

	am.Stop()
	_, err = am.Alerts()
	require.Error(t, err, "a stopped Alertmanager does not answer")

	am.Restart()
	got, err = am.Alerts()
	require.NoError(t, err)
	assert.Empty(t, got, "Alertmanager does not persist alerts across a restart")
}

// What the exporter relies on when it resolves: an alert posted with an
// endsAt in the past is no longer listed by GET /api/v2/alerts, with any
// combination of the active/silenced/inhibited filters.
func TestResolvedAlertIsNotListed(t *testing.T) {
	am := Start(t)
	now := time.Now()
	labels := models.LabelSet{"alertname": "AmtestResolved"}
	require.NoError(t, post(t, am, &models.PostableAlert{Alert: models.Alert{Labels: labels},
		StartsAt: strfmt.DateTime(now.Add(-time.Minute)), EndsAt: strfmt.DateTime(now.Add(time.Minute))}))
	got, err := am.Alerts(`alertname="AmtestResolved"`)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "active", *got[0].Status.State)

	require.NoError(t, post(t, am, &models.PostableAlert{Alert: models.Alert{Labels: labels},
		StartsAt: strfmt.DateTime(now.Add(-time.Minute)), EndsAt: strfmt.DateTime(now)}))
	got, err = am.Alerts(`alertname="AmtestResolved"`)
	require.NoError(t, err)
	assert.Empty(t, got)
	f := false
	for _, active := range []bool{true, false} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ok, err := am.Client().Alert.GetAlerts(alert.NewGetAlertsParamsWithContext(ctx).
			WithActive(&active).WithSilenced(&f).WithInhibited(&f).WithUnprocessed(&f))
		cancel()
		require.NoError(t, err)
		assert.Empty(t, ok.Payload, "active=%v", active)
	}
}

// Label names that Alertmanager 0.25 refuses make it answer 400 (the
// client's *PostAlertsBadRequest), which the exporter treats as permanent.
// 0.25 knows only classic names; later versions may take "bad-name".
func TestInvalidLabelNameIsBadRequest(t *testing.T) {
	am := Start(t)
	for _, name := range []string{"", "bad-name"} {
		now := time.Now()
		err := post(t, am, &models.PostableAlert{Alert: models.Alert{Labels: models.LabelSet{"alertname": "X", name: "v"}},
			StartsAt: strfmt.DateTime(now), EndsAt: strfmt.DateTime(now.Add(time.Minute))})
		var bad *alert.PostAlertsBadRequest
		require.ErrorAs(t, err, &bad, "label name %q", name)
		assert.Contains(t, bad.Payload, "invalid name")
	}
}
