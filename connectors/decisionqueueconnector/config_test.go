package decisionqueueconnector

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/decisiontrace/decisiontrace/connectors/decisionqueueconnector/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	tests := []struct {
		id       component.ID
		expected *Config
		err      string
	}{
		{id: component.NewID(metadata.Type), expected: &Config{QueueMetrics: []QueueMetric{
			{Metric: "rabbitmq.message.current", QueueFrom: "rabbitmq.queue.name", Workflow: "claims-triage", Match: map[string]string{"state": "ready"}},
			{Metric: "claims_review_backlog", Queue: "manual-review"},
		}}},
		{id: component.NewIDWithName(metadata.Type, "empty"), expected: &Config{}, err: "queue_metrics: name at least one metric"},
		{id: component.NewIDWithName(metadata.Type, "invalid"), expected: &Config{QueueMetrics: []QueueMetric{
			{Queue: "manual-review"}, {Metric: "m", Queue: "q", QueueFrom: "queue"},
		}}, err: "queue_metrics[0].metric: required\nqueue_metrics[1]: set exactly one of queue and queue_from"},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := NewFactory().CreateDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			assert.Equal(t, tt.expected, cfg)
			if tt.err == "" {
				assert.NoError(t, confmap.Validate(cfg))
			} else {
				assert.EqualError(t, confmap.Validate(cfg), tt.err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  *Config
		err  string
	}{
		{"fixed queue", &Config{QueueMetrics: []QueueMetric{{Metric: "m", Queue: "q"}}}, ""},
		{"queue from an attribute", &Config{QueueMetrics: []QueueMetric{{Metric: "m", QueueFrom: "queue"}}}, ""},
		{"nothing to turn", &Config{}, "queue_metrics: name at least one metric"},
		{"every problem at once", &Config{QueueMetrics: []QueueMetric{{}, {Metric: "m", Queue: "q", QueueFrom: "queue"}}},
			"queue_metrics[0].metric: required\n" +
				"queue_metrics[0]: set exactly one of queue and queue_from\n" +
				"queue_metrics[1]: set exactly one of queue and queue_from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := *tt.cfg
			err := tt.cfg.Validate()
			assert.Equal(t, before, *tt.cfg, "Validate changes nothing")
			if tt.err == "" {
				assert.NoError(t, err)
				return
			}
			assert.EqualError(t, err, tt.err)
		})
	}
}
