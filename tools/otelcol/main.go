// Program otelcol is ferry's minimal OpenTelemetry Collector distribution, for the
// integration tests: a real collector that ferry's OTLP/HTTP exporter can send
// traces to, whose file exporter writes what it received as JSON lines.
//
// Written by hand the way the OpenTelemetry Collector Builder (ocb) v0.161.0
// generates a distribution (its main.go, main_others.go and components.go
// templates), so no builder run is needed: `go build` here is the whole build.
// All collector modules stay at one release: core v0.161.0 with the stable
// v1.67.0 modules it requires, and contrib's fileexporter v0.161.0.
// tools/otelcol/install.sh builds it (see there for where the binary goes).
//
// Components: receiver otlp; exporters file (contrib) and debug; processor batch;
// config providers env, file and yaml (so `--config FILE`, `--config file:FILE`,
// `${env:VAR}` inside a config and inline `--config 'yaml:...'` all work).
package main

import (
	"os"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	envprovider "go.opentelemetry.io/collector/confmap/provider/envprovider"
	fileprovider "go.opentelemetry.io/collector/confmap/provider/fileprovider"
	yamlprovider "go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"
)

// Version is the collector release this distribution is built from; install.sh
// keys its cache folder by the same string and checks `otelcol --version`.
const Version = "0.161.0"

func main() {
	info := component.BuildInfo{
		Command:     "otelcol",
		Description: "ferry test distribution of the OpenTelemetry Collector (otlp receiver, file/debug exporters)",
		Version:     Version,
	}

	set := otelcol.CollectorSettings{
		BuildInfo: info,
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
			},
		},
		ProviderModules: map[string]string{
			envprovider.NewFactory().Create(confmap.ProviderSettings{}).Scheme():  "go.opentelemetry.io/collector/confmap/provider/envprovider v1.67.0",
			fileprovider.NewFactory().Create(confmap.ProviderSettings{}).Scheme(): "go.opentelemetry.io/collector/confmap/provider/fileprovider v1.67.0",
			yamlprovider.NewFactory().Create(confmap.ProviderSettings{}).Scheme(): "go.opentelemetry.io/collector/confmap/provider/yamlprovider v1.67.0",
		},
	}

	if err := otelcol.NewCommand(set).Execute(); err != nil {
		// cobra has already printed the error.
		os.Exit(1)
	}
}
