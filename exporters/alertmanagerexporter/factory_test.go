package alertmanagerexporter

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/otelcol"
)

// contribs stands in for contrib's Alertmanager exporter, whose type this
// exporter's was: a distribution may hold both.
func contribs() exporter.Factory {
	return exporter.NewFactory(DeprecatedType, func() component.Config { return struct{}{} })
}

func TestTypeDoesNotCollideWithContribs(t *testing.T) {
	m, err := otelcol.MakeFactoryMap(NewFactory(), contribs())
	require.NoError(t, err)
	assert.Len(t, m, 2)

	// decisiontrace's own distribution answers to the old type as well,
	// and so cannot hold contrib's.
	m, err = otelcol.MakeFactoryMap(NewFactoryWithDeprecatedType())
	require.NoError(t, err)
	assert.Same(t, m[DeprecatedType], m[NewFactory().Type()])
	_, err = otelcol.MakeFactoryMap(NewFactoryWithDeprecatedType(), contribs())
	assert.EqualError(t, err, `duplicate component factory "alertmanager"`)
}
