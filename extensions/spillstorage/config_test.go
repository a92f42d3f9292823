package spillstorage

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/decisiontrace/decisiontrace/extensions/spillstorage/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	for _, tt := range []struct {
		id       component.ID
		expected component.Config
	}{
		{component.NewID(metadata.Type), &Config{Storage: component.MustNewID("file_storage"), Directory: "/var/lib/decisiontrace/spill", MinFileSize: defaultMinFileSize}},
		{component.NewIDWithName(metadata.Type, "all"), &Config{Storage: component.MustNewIDWithName("file_storage", "queue"),
			Directory: "/var/lib/decisiontrace/spill", MinFileSize: 4096, FSync: true}},
	} {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			assert.NoError(t, confmap.Validate(cfg))
			assert.Equal(t, tt.expected, cfg)
		})
	}
}

func TestValidate(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	empty := NewFactory().CreateDefaultConfig()
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, "empty").String())
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(empty))
	for _, tt := range []struct {
		name string
		cfg  *Config
		want string
	}{
		{"valid", &Config{Storage: component.MustNewID("file_storage"), Directory: "/d", MinFileSize: 1}, ""},
		{"empty", empty.(*Config), "storage: name the storage extension that keeps the keys (for example file_storage)\ndirectory: must be set"},
		{"min_file_size", &Config{Storage: component.MustNewID("file_storage"), Directory: "/d", MinFileSize: 0}, "min_file_size: must be positive, got 0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			assert.EqualError(t, err, tt.want)
		})
	}
}
