// Package selfmetrics builds a component's own metrics one way: each from
// its name, description and unit on the component's meter, with the
// errors of all of them joined once.
package selfmetrics

import (
	"errors"

	"go.opentelemetry.io/otel/metric"
)

// Builder makes the metrics of one component. A unit of "" is none.
type Builder struct {
	meter metric.Meter
	errs  []error
}

// New builds on the meter of scope (the component's metadata.ScopeName).
func New(mp metric.MeterProvider, scope string) *Builder {
	return &Builder{meter: mp.Meter(scope)}
}

// Counter is a monotonic count.
func (b *Builder) Counter(name, desc, unit string) metric.Int64Counter {
	c, err := b.meter.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit(unit))
	b.errs = append(b.errs, err)
	return c
}

// Gauge is a current integer value.
func (b *Builder) Gauge(name, desc, unit string) metric.Int64Gauge {
	g, err := b.meter.Int64Gauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
	b.errs = append(b.errs, err)
	return g
}

// FloatGauge is a current value, such as a duration in seconds.
func (b *Builder) FloatGauge(name, desc, unit string) metric.Float64Gauge {
	g, err := b.meter.Float64Gauge(name, metric.WithDescription(desc), metric.WithUnit(unit))
	b.errs = append(b.errs, err)
	return g
}

// Err is every error building the metrics, joined.
func (b *Builder) Err() error { return errors.Join(b.errs...) }
