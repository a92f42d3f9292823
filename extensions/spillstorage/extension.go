package spillstorage

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/extensioncapabilities"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"
)

type spillExtension struct {
	cfg    *Config
	logger *zap.Logger
	host   component.Host
}

var (
	_ storage.Extension               = (*spillExtension)(nil)
	_ extensioncapabilities.Dependent = (*spillExtension)(nil)
)

func newExtension(cfg *Config, logger *zap.Logger) *spillExtension {
	return &spillExtension{cfg: cfg, logger: logger}
}

// Dependencies makes the collector start the keys' storage first and shut
// it down after this one.
func (e *spillExtension) Dependencies() []component.ID { return []component.ID{e.cfg.Storage} }

// Start keeps the host: the keys' storage is looked up when a component
// asks for a client, once every extension has started; the directory is
// created then.
func (e *spillExtension) Start(_ context.Context, host component.Host) error {
	e.host = host
	return nil
}

func (e *spillExtension) Shutdown(context.Context) error { return nil }

// GetClient returns a client over the keys' storage's client of the same
// component, with the large values in a directory of their own.
func (e *spillExtension) GetClient(ctx context.Context, kind component.Kind, id component.ID, name string) (storage.Client, error) {
	if e.host == nil {
		return nil, fmt.Errorf("spillstorage: not started")
	}
	ext, ok := e.host.GetExtensions()[e.cfg.Storage]
	if !ok {
		return nil, fmt.Errorf("spillstorage: storage: no extension %s (add it to service::extensions)", e.cfg.Storage)
	}
	keys, ok := ext.(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("spillstorage: storage: %s is not a storage extension", e.cfg.Storage)
	}
	inner, err := keys.GetClient(ctx, kind, id, name)
	if err != nil {
		return nil, fmt.Errorf("spillstorage: %s: %w", e.cfg.Storage, err)
	}
	dir := filepath.Join(e.cfg.Directory, clientDir(kind, id, name))
	c, err := openClient(ctx, inner, dir, e.cfg.MinFileSize, e.cfg.FSync, e.logger)
	if err != nil {
		_ = inner.Close(ctx)
		return nil, err
	}
	return c, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// clientDir names a component's directory as file_storage names its file.
func clientDir(kind component.Kind, id component.ID, name string) string {
	parts := []string{strings.ToLower(kind.String()), id.Type().String(), id.Name()}
	if name != "" {
		parts = append(parts, name)
	}
	return unsafeName.ReplaceAllString(strings.Join(parts, "_"), "~")
}
