package decisioneventsreceiver

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// tokenAuth stands in for bearertokenauth: an extensionauth.Server the
// confighttp server calls before the receiver's handler.
type tokenAuth struct {
	component.StartFunc
	component.ShutdownFunc
}

func (tokenAuth) Authenticate(ctx context.Context, sources map[string][]string) (context.Context, error) {
	for _, v := range sources["Authorization"] {
		if v == "Bearer s3cret" {
			return ctx, nil
		}
	}
	return ctx, errors.New("missing or wrong bearer token")
}

type authHost struct{}

func (authHost) GetExtensions() map[component.ID]component.Component {
	return map[component.ID]component.Component{component.MustNewID("tokenauth"): tokenAuth{}}
}

func TestAuthExtensionGuardsTheEndpoints(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: component.MustNewID("tokenauth")}})
	sink := &consumertest.LogsSink{}
	r, err := newReceiver(cfg, receivertest.NewNopSettings(typ), sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), authHost{}))
	tr := &http.Transport{}
	client := &http.Client{Transport: tr}
	defer func() {
		tr.CloseIdleConnections()
		require.NoError(t, r.Shutdown(context.Background()))
	}()

	send := func(token string) int {
		req, err := http.NewRequest(http.MethodPost, "http://"+r.listenAddr.String()+eventsPath, strings.NewReader(array(model("d-1", ""))))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := client.Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
		return res.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, send(""))
	require.Equal(t, http.StatusUnauthorized, send("guess"))
	require.Zero(t, sink.LogRecordCount())
	require.Equal(t, http.StatusOK, send("s3cret"))
	require.Equal(t, 1, sink.LogRecordCount())
}

func TestObsReportCountsAcceptedAndRefused(t *testing.T) {
	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	set := receivertest.NewNopSettings(typ)
	set.TelemetrySettings = tel.NewTelemetrySettings()
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	sink := &consumertest.LogsSink{}
	r, err := newReceiver(cfg, set, sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	tr := &http.Transport{}
	h := &harness{r: r, base: "http://" + r.listenAddr.String(), sink: sink, client: &http.Client{Transport: tr}}
	defer func() {
		tr.CloseIdleConnections()
		require.NoError(t, r.Shutdown(context.Background()))
	}()

	a := h.events(t, array(model("d-1", ""), model("d-2", ""), model("d-3", `"decision.layer":"nope"`)))
	require.Equal(t, http.StatusOK, a.status, a.raw)

	sum := func(name string) int64 {
		m, err := tel.GetMetric(name)
		require.NoError(t, err, name)
		var n int64
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			n += dp.Value
		}
		return n
	}
	require.Equal(t, int64(2), sum("otelcol_receiver_accepted_log_records"))
	require.Equal(t, int64(1), sum("otelcol_receiver_refused_log_records"))
}
