// Code written in mdatagen's generated layout from metadata.yaml. mdatagen is
// not served by the module proxy this project builds from; keep in step by hand.

// Package metadata contains the status and build information for the
// decisionalertmanager exporter.
package metadata

import (
	"go.opentelemetry.io/collector/component"
)

var (
	Type      = component.MustNewType("decisionalertmanager")
	ScopeName = "github.com/decisiontrace/decisiontrace/exporters/alertmanagerexporter"
)

const (
	LogsStability = component.StabilityLevelAlpha
)
