// Command dtdashboards writes decisiontrace's Grafana dashboards (package
// dashboards) as JSON, and their README, into a directory, by default
// dashboards/ of the repository:
//
//	go run ./cmd/dtdashboards [--out dashboards]
package main

import (
	"flag"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/decisiontrace/decisiontrace/dashboards"
)

func main() {
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly}).With().Timestamp().Logger()
	out := flag.String("out", "dashboards", "directory to write the JSON files into")
	flag.Parse()
	files, err := dashboards.Generate()
	if err != nil {
		log.Error().Err(err).Msg("generate")
		os.Exit(1)
	}
	files["README.md"] = dashboards.Readme()
	for _, name := range dashboards.Files(files) {
		path := filepath.Join(*out, name)
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			log.Error().Err(err).Str("file", path).Msg("write")
			os.Exit(1)
		}
		log.Info().Str("file", path).Msg("written")
	}
}
