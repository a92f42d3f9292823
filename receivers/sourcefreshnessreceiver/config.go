package sourcefreshnessreceiver

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configtls"

	"github.com/decisiontrace/decisiontrace/internal/chconn"
)

// Kind says how a source or queue is read.
type Kind string

const (
	KindPostgreSQL Kind = "postgresql"
	KindMySQL      Kind = "mysql"
	KindClickHouse Kind = "clickhouse"
	KindHTTP       Kind = "http"
)

func (k Kind) isSQL() bool { return k == KindPostgreSQL || k == KindMySQL || k == KindClickHouse }

// Config is the sourcefreshness receiver's configuration.
type Config struct {
	// Interval and Timeout apply to every source and queue that sets none
	// of its own.
	Interval time.Duration `mapstructure:"interval"`
	Timeout  time.Duration `mapstructure:"timeout"`

	// Sources are polled for the time of their last update and become
	// source.freshness signals.
	Sources []SourceConfig `mapstructure:"sources"`
	// Queues are polled for their depth and become queue.depth signals;
	// name is the workflow.queue value and the query or field returns a
	// non-negative whole number.
	Queues []SourceConfig `mapstructure:"queues"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// SourceConfig is one polled source (or queue).
type SourceConfig struct {
	// Name is the data.source (or workflow.queue) value.
	Name string `mapstructure:"name"`
	// Workflow and Workflows name the decision.workflow values this source
	// serves; each poll emits one record per workflow, or one record
	// without decision.workflow when there is none.
	Workflow  string   `mapstructure:"workflow"`
	Workflows []string `mapstructure:"workflows"`
	Kind      Kind     `mapstructure:"kind"`
	// Interval and Timeout override the receiver-level ones when set.
	Interval time.Duration `mapstructure:"interval"`
	Timeout  time.Duration `mapstructure:"timeout"`

	// DSN is the connection string of the SQL kinds: a PostgreSQL URL or
	// key=value string, a go-sql-driver/mysql DSN, or a clickhouse-go DSN.
	// It is opaque because it often carries a password.
	DSN configopaque.String `mapstructure:"dsn"`
	// Username and Password, when set, replace the DSN's.
	Username string              `mapstructure:"username"`
	Password configopaque.String `mapstructure:"password"`
	// Query returns one row with one column: the last update time, or the
	// queue depth.
	Query string `mapstructure:"query"`

	// URL, Headers, Field and TLS are for kind http: a GET of URL answers
	// JSON, and Field is the dotted path to the value in it.
	URL     string                         `mapstructure:"url"`
	Headers map[string]configopaque.String `mapstructure:"headers"`
	Field   string                         `mapstructure:"field"`
	TLS     configtls.ClientConfig         `mapstructure:"tls"`

	// prevent unkeyed literal initialization
	_ struct{}
}

var _ component.Config = (*Config)(nil)

// Validate checks the configuration without changing it.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.Interval <= 0 {
		errs = append(errs, fmt.Errorf("interval: must be positive, got %s", cfg.Interval))
	}
	if cfg.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: must be positive, got %s", cfg.Timeout))
	}
	if len(cfg.Sources) == 0 && len(cfg.Queues) == 0 {
		errs = append(errs, errors.New("sources: at least one source or queue is required"))
	}
	errs = append(errs, validateList("sources", cfg.Sources)...)
	errs = append(errs, validateList("queues", cfg.Queues)...)
	return errors.Join(errs...)
}

func validateList(list string, entries []SourceConfig) []error {
	var errs []error
	seen := map[string]int{}
	for i := range entries {
		p := fmt.Sprintf("%s[%d]", list, i)
		s := &entries[i]
		if s.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name: required", p))
		} else if j, dup := seen[s.Name]; dup {
			errs = append(errs, fmt.Errorf("%s.name: %q is already used by %s[%d]", p, s.Name, list, j))
		} else {
			seen[s.Name] = i
		}
		for j, w := range s.Workflows {
			if strings.TrimSpace(w) == "" {
				errs = append(errs, fmt.Errorf("%s.workflows[%d]: must not be empty", p, j))
			}
		}
		if s.Interval < 0 {
			errs = append(errs, fmt.Errorf("%s.interval: must not be negative, got %s", p, s.Interval))
		}
		if s.Timeout < 0 {
			errs = append(errs, fmt.Errorf("%s.timeout: must not be negative, got %s", p, s.Timeout))
		}
		switch {
		case s.Kind == "":
			errs = append(errs, fmt.Errorf("%s.kind: required: postgresql, mysql, clickhouse or http", p))
		case s.Kind.isSQL():
			errs = append(errs, validateSQL(p, s)...)
		case s.Kind == KindHTTP:
			errs = append(errs, validateHTTP(p, s)...)
		default:
			errs = append(errs, fmt.Errorf("%s.kind: %q is not one of postgresql, mysql, clickhouse, http", p, s.Kind))
		}
	}
	return errs
}

func validateSQL(p string, s *SourceConfig) []error {
	var errs []error
	if s.DSN == "" {
		errs = append(errs, fmt.Errorf("%s.dsn: required for kind %s", p, s.Kind))
	} else if err := parseDSN(s.Kind, string(s.DSN)); err != nil {
		errs = append(errs, fmt.Errorf("%s.dsn: not a valid %s DSN: %s", p, s.Kind, redact(err.Error(), secrets(s))))
	}
	if strings.TrimSpace(s.Query) == "" {
		errs = append(errs, fmt.Errorf("%s.query: required for kind %s", p, s.Kind))
	}
	return append(errs, notUsed(p, s.Kind, []unused{{"url", s.URL != ""}, {"headers", len(s.Headers) > 0}, {"field", s.Field != ""}})...)
}

func validateHTTP(p string, s *SourceConfig) []error {
	var errs []error
	if s.URL == "" {
		errs = append(errs, fmt.Errorf("%s.url: required for kind http", p))
	} else if u, err := url.Parse(s.URL); err != nil {
		// url.Parse quotes the URL, which may carry a token.
		errs = append(errs, fmt.Errorf("%s.url: not a valid URL", p))
	} else if u.Scheme != "http" && u.Scheme != "https" {
		errs = append(errs, fmt.Errorf("%s.url: scheme %q is not http or https", p, u.Scheme))
	} else if u.Host == "" {
		errs = append(errs, fmt.Errorf("%s.url: has no host", p))
	}
	if s.Field == "" {
		errs = append(errs, fmt.Errorf("%s.field: required for kind http (a dotted path into the JSON response, e.g. status.last_updated)", p))
	} else if containsEmpty(strings.Split(s.Field, ".")) {
		errs = append(errs, fmt.Errorf("%s.field: %q has an empty path segment", p, s.Field))
	}
	return append(errs, notUsed(p, s.Kind, []unused{{"dsn", s.DSN != ""}, {"username", s.Username != ""}, {"password", s.Password != ""}, {"query", s.Query != ""}})...)
}

// parseDSN checks a DSN with the parser of the driver that will use it.
func parseDSN(kind Kind, dsn string) error {
	var err error
	switch kind {
	case KindPostgreSQL:
		_, err = pgx.ParseConfig(dsn)
	case KindMySQL:
		_, err = mysql.ParseDSN(dsn)
	case KindClickHouse:
		if err = chconn.ValidateEndpoint(dsn); err == nil {
			_, err = chconn.Options(chconn.Settings{Endpoint: dsn})
		}
	}
	return err
}

func containsEmpty(ss []string) bool {
	for _, s := range ss {
		if s == "" {
			return true
		}
	}
	return false
}

type unused struct {
	field string
	set   bool
}

// notUsed refuses fields of another kind: a url on a postgresql source is a
// mistake, not something to ignore silently.
func notUsed(p string, kind Kind, fields []unused) []error {
	var errs []error
	for _, f := range fields {
		if f.set {
			errs = append(errs, fmt.Errorf("%s.%s: not used by kind %s", p, f.field, kind))
		}
	}
	return errs
}

// workflows is the deduplicated union of Workflow and Workflows, in order.
func (s *SourceConfig) workflows() []string {
	var out []string
	seen := map[string]bool{}
	for _, w := range append([]string{s.Workflow}, s.Workflows...) {
		if w != "" && !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// secrets are the strings that must never reach a log line or data.error:
// the password, the DSN itself and the password inside it, header values,
// and the URL's password and query values.
func secrets(s *SourceConfig) []string {
	var out []string
	add := func(v string) {
		if len(v) >= 3 {
			out = append(out, v)
		}
	}
	add(string(s.Password))
	add(string(s.DSN))
	if u, err := url.Parse(string(s.DSN)); err == nil && u.User != nil {
		pw, _ := u.User.Password()
		add(pw)
	}
	if s.Kind == KindMySQL {
		if c, err := mysql.ParseDSN(string(s.DSN)); err == nil {
			add(c.Passwd)
		}
	}
	if s.Kind == KindPostgreSQL {
		if c, err := pgx.ParseConfig(string(s.DSN)); err == nil {
			add(c.Password)
		}
	}
	for _, v := range s.Headers {
		add(string(v))
	}
	if u, err := url.Parse(s.URL); err == nil {
		if u.User != nil {
			pw, _ := u.User.Password()
			add(pw)
		}
		for _, vs := range u.Query() {
			for _, v := range vs {
				add(v)
			}
		}
	}
	// Longest first, so a secret that contains another is replaced whole.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && len(out[j]) > len(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// redact replaces every secret in msg.
func redact(msg string, secrets []string) string {
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "***")
	}
	return msg
}
