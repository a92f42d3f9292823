// Package chconn turns the ClickHouse connection settings every
// decisiontrace component accepts (a DSN, a user, a password, TLS) into
// clickhouse-go options, the same way everywhere.
package chconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
)

// MilliParam is a `?` for a time passed as its UnixMilli (int64):
// clickhouse-go binds a time.Time `?` at whole seconds, which moves an
// evaluation instant or a refresh's bookmark by up to a second.
const MilliParam = "fromUnixTimestamp64Milli(toInt64(?))"

// Settings are a component's ClickHouse connection settings.
type Settings struct {
	// Endpoint is a DSN: clickhouse://, tcp://, clickhouses:// (TLS),
	// http:// or https://; DSN options pass through to clickhouse-go.
	Endpoint string
	Username string
	Password configopaque.String
	TLS      configoptional.Optional[configtls.ClientConfig]
	// DialTimeout bounds connecting.
	DialTimeout time.Duration
	// KeepDatabase keeps the DSN's database as the session's default, for
	// user-written queries with unqualified table names.
	KeepDatabase bool
}

var schemes = map[string]struct{}{"clickhouse": {}, "clickhouses": {}, "tcp": {}, "http": {}, "https": {}}

// ValidateEndpoint checks a DSN's form without connecting.
func ValidateEndpoint(endpoint string) error {
	if endpoint == "" {
		return errors.New("must be set, e.g. clickhouse://127.0.0.1:9000")
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return errors.New(Redact(endpoint) + " does not parse as a URL")
	}
	if _, ok := schemes[u.Scheme]; !ok {
		return fmt.Errorf("scheme %q is not one of clickhouse, clickhouses, tcp, http, https", u.Scheme)
	}
	return nil
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Identifier reports whether s can be spliced into SQL as a database or
// table name: identifiers cannot be bound as query parameters.
func Identifier(s string) bool { return identifier.MatchString(s) }

// Options builds clickhouse-go options. A user and password given
// separately override those of the DSN; the DSN's database is ignored
// unless KeepDatabase (components name their own database explicitly); LZ4
// compression is on unless the DSN says otherwise.
func Options(s Settings) (*clickhouse.Options, error) {
	opts, err := clickhouse.ParseDSN(normalize(s.Endpoint))
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", Redact(s.Endpoint), err)
	}
	if s.Username != "" {
		opts.Auth.Username = s.Username
	}
	if s.Password != "" {
		opts.Auth.Password = string(s.Password)
	}
	if !s.KeepDatabase {
		opts.Auth.Database = ""
	}
	if s.DialTimeout > 0 {
		opts.DialTimeout = s.DialTimeout
	}
	if opts.Compression == nil {
		opts.Compression = &clickhouse.Compression{Method: clickhouse.CompressionLZ4}
	}
	if tlsCfg := s.TLS.Get(); tlsCfg != nil && !tlsCfg.Insecure {
		loaded, err := tlsCfg.LoadTLSConfig(context.Background())
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		opts.TLS = loaded
	} else if opts.TLS == nil && secure(s.Endpoint) {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return opts, nil
}

// normalize lets users write the ClickHouse-style schemes clickhouses://
// and tcp:// that clickhouse-go's DSN parser spells differently.
func normalize(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	q := u.Query()
	switch u.Scheme {
	case "clickhouses":
		u.Scheme = "clickhouse"
		q.Set("secure", "true")
	case "tcp":
		u.Scheme = "clickhouse"
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func secure(dsn string) bool {
	u, err := url.Parse(dsn)
	return err == nil && (u.Scheme == "clickhouses" || u.Scheme == "https" || u.Query().Get("secure") == "true")
}

// Redact keeps a password in a DSN out of logs and errors.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "<unparseable endpoint>"
	}
	return u.Redacted()
}

// ClientConfig is how every component that talks to the decision store
// names its ClickHouse, squashed into the component's configuration
// (`mapstructure:",squash"`), so the same keys mean the same thing
// everywhere: endpoint, username, password, tls, connect_timeout.
type ClientConfig struct {
	// Endpoint is a ClickHouse DSN, e.g. clickhouse://host:9000 or
	// https://host:8443 for the HTTP interface. Credentials in the DSN are
	// allowed, but username and password are preferred, so that they can
	// come from ${env:...} or ${file:...}.
	Endpoint string              `mapstructure:"endpoint"`
	Username string              `mapstructure:"username"`
	Password configopaque.String `mapstructure:"password"`
	// TLS applies when set; for clickhouses:// or https:// DSNs the system
	// roots are used when no CA is given.
	TLS configoptional.Optional[configtls.ClientConfig] `mapstructure:"tls"`
	// ConnectTimeout bounds dialing.
	ConnectTimeout time.Duration `mapstructure:"connect_timeout"`
}

// DefaultConnectTimeout is every component's connect_timeout unless set.
const DefaultConnectTimeout = 5 * time.Second

// NewClientConfig is the default: the local ClickHouse's native port.
func NewClientConfig() ClientConfig {
	return ClientConfig{Endpoint: "clickhouse://127.0.0.1:9000", ConnectTimeout: DefaultConnectTimeout}
}

// Problems are what is wrong with the settings, each naming its key, for
// the component's Validate to join with its own.
func (c *ClientConfig) Problems() []error {
	var errs []error
	if err := ValidateEndpoint(c.Endpoint); err != nil {
		errs = append(errs, fmt.Errorf("endpoint: %w", err))
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("connect_timeout: must be positive, got %s", c.ConnectTimeout))
	}
	return errs
}

// Options are the clickhouse-go options of the settings.
func (c *ClientConfig) Options() (*clickhouse.Options, error) {
	return Options(Settings{Endpoint: c.Endpoint, Username: c.Username, Password: c.Password, TLS: c.TLS, DialTimeout: c.ConnectTimeout})
}
