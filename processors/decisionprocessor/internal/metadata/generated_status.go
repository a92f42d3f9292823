// Code written in mdatagen's generated layout from metadata.yaml. mdatagen is
// not served by the module proxy this project builds from; keep in step by hand.

// Package metadata contains the status and build information for the
// decision processor.
package metadata

import (
	"go.opentelemetry.io/collector/component"
)

var (
	Type      = component.MustNewType("decision")
	ScopeName = "github.com/decisiontrace/decisiontrace/processors/decisionprocessor"
)

const (
	TracesStability = component.StabilityLevelAlpha
	LogsStability   = component.StabilityLevelAlpha
)
