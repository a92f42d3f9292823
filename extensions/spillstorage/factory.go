package spillstorage

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/decisiontrace/decisiontrace/extensions/spillstorage/internal/metadata"
)

// NewFactory returns the spillstorage extension's factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, create, metadata.ExtensionStability)
}

// defaultMinFileSize: a queued request of a few records stays in
// file_storage; the batches producers send (hundreds of records, 100 KB
// and more) each get a file.
const defaultMinFileSize = 16 << 10

func createDefaultConfig() component.Config {
	return &Config{MinFileSize: defaultMinFileSize}
}

func create(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newExtension(cfg.(*Config), set.Logger), nil
}
