package main

import (
	"errors"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/oidcauthextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/pprofextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"

	"github.com/decisiontrace/decisiontrace/connectors/decisionqueueconnector"
	"github.com/decisiontrace/decisiontrace/exporters/alertmanagerexporter"
	"github.com/decisiontrace/decisiontrace/exporters/decisionstoreexporter"
	"github.com/decisiontrace/decisiontrace/extensions/spillstorage"
	"github.com/decisiontrace/decisiontrace/processors/decisionprocessor"
	"github.com/decisiontrace/decisiontrace/receivers/alertrulesreceiver"
	"github.com/decisiontrace/decisiontrace/receivers/decisioneventsreceiver"
	"github.com/decisiontrace/decisiontrace/receivers/sourcefreshnessreceiver"
)

// components lists what the decisiontrace distribution is built from; the
// project's own components are added here as they arrive.
func components() (otelcol.Factories, error) {
	f := otelcol.Factories{Telemetry: otelconftelemetry.NewFactory()}
	var errs, err error
	f.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](
		otlpreceiver.NewFactory(),
		decisioneventsreceiver.NewFactory(),
		sourcefreshnessreceiver.NewFactory(),
		alertrulesreceiver.NewFactory(),
	)
	errs = errors.Join(errs, err)
	f.Processors, err = otelcol.MakeFactoryMap[processor.Factory](
		batchprocessor.NewFactory(),
		memorylimiterprocessor.NewFactory(),
		decisionprocessor.NewFactory(),
	)
	errs = errors.Join(errs, err)
	f.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](
		debugexporter.NewFactory(),
		decisionstoreexporter.NewFactory(),
		alertmanagerexporter.NewFactoryWithDeprecatedType(),
	)
	errs = errors.Join(errs, err)
	f.Connectors, err = otelcol.MakeFactoryMap[connector.Factory](
		decisionqueueconnector.NewFactory(),
	)
	errs = errors.Join(errs, err)
	f.Extensions, err = otelcol.MakeFactoryMap[extension.Factory](
		healthcheckextension.NewFactory(),
		pprofextension.NewFactory(),
		filestorage.NewFactory(),
		// The persistent queue's large values, beside file_storage.
		spillstorage.NewFactory(),
		// Authentication of the ingest endpoints (receivers' auth).
		bearertokenauthextension.NewFactory(),
		oidcauthextension.NewFactory(),
	)
	errs = errors.Join(errs, err)
	return f, errs
}
