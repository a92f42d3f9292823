package decisionprocessor

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/decisiontrace/decisiontrace/internal/chconn"
	"github.com/decisiontrace/decisiontrace/processors/decisionprocessor/internal/metadata"
)

// NewFactory returns the decision processor factory.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithLogs(createLogs, metadata.LogsStability),
		processor.WithTraces(createTraces, metadata.TracesStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		Aliases: AliasesConfig{ReloadInterval: 10 * time.Second,
			// Takes effect when aliases.clickhouse is set.
			ClickHouse: configoptional.Default(AliasTableConfig{ClientConfig: chconn.NewClientConfig()})},
		UnknownWorkflows: UnknownWorkflowsStore,
	}
}

// instances shares one processor between the pipelines of a component ID,
// as the OTLP receiver shares its servers: one alias map, one reload loop
// and one alias-table connection for all of them. No decision state is
// shared: there is none.
var instances = struct {
	sync.Mutex
	m map[component.ID]*decisionProcessor
}{m: map[component.ID]*decisionProcessor{}}

func instance(cfg *Config, set processor.Settings) (*decisionProcessor, error) {
	instances.Lock()
	defer instances.Unlock()
	if p, ok := instances.m[set.ID]; ok {
		return p, nil
	}
	p, err := newDecisionProcessor(cfg, set)
	if err != nil {
		return nil, err
	}
	instances.m[set.ID] = p
	return p, nil
}

// release shuts a pipeline's use of the instance down, and forgets the
// instance once every pipeline using it has shut down, so a reloaded
// configuration builds a fresh one.
func release(id component.ID, p *decisionProcessor) func(context.Context) error {
	return func(ctx context.Context) error {
		err := p.shutdown(ctx)
		p.mu.Lock()
		idle := p.starts == 0
		p.mu.Unlock()
		if idle {
			instances.Lock()
			if instances.m[id] == p {
				delete(instances.m, id)
			}
			instances.Unlock()
		}
		return err
	}
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	p, err := instance(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, p.processLogs,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
		processorhelper.WithStart(p.start),
		processorhelper.WithShutdown(release(set.ID, p)))
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	p, err := instance(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, p.processTraces,
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}),
		processorhelper.WithStart(p.start),
		processorhelper.WithShutdown(release(set.ID, p)))
}
