package alertmanagerexporter

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// Config is the alertmanager exporter's configuration.
type Config struct {
	// ClientConfig is the HTTP client of every POST, set as every collector
	// component that speaks HTTP sets it: tls, timeout (one POST to one
	// Alertmanager; the endpoints are posted to at once, so it bounds a
	// push too), headers, auth (an authenticator extension such as
	// bearertokenauth), proxy_url, compression. Its endpoint is refused:
	// the Alertmanagers are Endpoints, a list.
	confighttp.ClientConfig `mapstructure:",squash"`
	QueueConfig             configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	BackOffConfig           configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`

	// Endpoints are the base URLs of the Alertmanagers, e.g.
	// http://am1:9093 or https://am.example/alertmanager (a path prefix as
	// set by --web.route-prefix). Every endpoint gets every alert:
	// Alertmanagers in HA deduplicate among themselves, and an alert that
	// reaches only one of them is not shared.
	Endpoints []string `mapstructure:"endpoints"`
	// BasicAuth or BearerToken (not both) authenticate every request: the
	// basicauth extension is not built at this distribution's collector
	// release, and a token is one line where an extension is five.
	BasicAuth   configoptional.Optional[BasicAuth] `mapstructure:"basic_auth"`
	BearerToken configopaque.String                `mapstructure:"bearer_token"`
	// ResendInterval is no longer used: the alertrules receiver sends
	// every firing alert again (its resend_interval), as Prometheus' rule
	// manager does. Accepted so that older configurations load; a value
	// is reported at start and ignored.
	ResendInterval time.Duration `mapstructure:"resend_interval"`
	// EndsAtAhead is how far ahead of now a firing alert's endsAt is set at
	// each send. Alertmanager resolves the alert by itself once endsAt
	// passes without another send, so it must cover a few missed re-sends
	// of the evaluator: at least twice the alertrules receiver's
	// resend_interval (Prometheus uses 4 × max(resend delay, evaluation
	// interval); the receiver re-sends on its own clock, whatever the
	// groups' intervals).
	EndsAtAhead time.Duration `mapstructure:"ends_at_ahead"`

	// RemovedRequestTimeout is the previous release's request_timeout, read
	// only so that Validate can say what it became.
	RemovedRequestTimeout any `mapstructure:"request_timeout"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	Username string              `mapstructure:"username"`
	Password configopaque.String `mapstructure:"password"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration without changing it.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.RemovedRequestTimeout != nil {
		errs = append(errs, errors.New("request_timeout: renamed to timeout, the HTTP client's setting (one POST to one Alertmanager); timeout no longer bounds a whole push on its own, the POSTs of a push run at once"))
	}
	if cfg.Endpoint != "" {
		// A default list beside it would post to an Alertmanager nobody named.
		errs = append(errs, errors.New("endpoint: use endpoints, a list: every Alertmanager listed gets every alert"))
	}
	if len(cfg.Endpoints) == 0 {
		errs = append(errs, errors.New("endpoints: at least one Alertmanager URL is required, e.g. http://127.0.0.1:9093"))
	}
	seen := map[string]bool{}
	for i, e := range cfg.Endpoints {
		if err := validateEndpoint(e); err != nil {
			errs = append(errs, fmt.Errorf("endpoints[%d]: %w", i, err))
			continue
		}
		if seen[e] {
			errs = append(errs, fmt.Errorf("endpoints[%d]: %q is listed twice", i, e))
		}
		seen[e] = true
	}
	if ba := cfg.BasicAuth.Get(); ba != nil {
		if ba.Username == "" {
			errs = append(errs, errors.New("basic_auth: username must be set"))
		}
		if cfg.BearerToken != "" {
			errs = append(errs, errors.New("bearer_token: cannot be combined with basic_auth"))
		}
	}
	if (cfg.BasicAuth.HasValue() || cfg.BearerToken != "") && cfg.Auth.HasValue() {
		errs = append(errs, errors.New("auth: cannot be combined with basic_auth or bearer_token"))
	}
	if cfg.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: must be positive, got %s", cfg.Timeout))
	}
	if err := cfg.ClientConfig.Validate(); err != nil {
		errs = append(errs, err)
	}
	if cfg.EndsAtAhead <= 0 {
		errs = append(errs, fmt.Errorf("ends_at_ahead: must be positive, got %s", cfg.EndsAtAhead))
	}
	return errors.Join(errs...)
}

func validateEndpoint(e string) error {
	u, err := url.Parse(e)
	if err != nil {
		return fmt.Errorf("%q is not a URL", e)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: scheme must be http or https", e)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", e)
	}
	if u.User != nil {
		// Credentials in a URL end up in logs and metric labels.
		return errors.New("credentials in the URL are not allowed; use basic_auth")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: no query or fragment allowed", e)
	}
	return nil
}
