// Package amlocal runs a local Prometheus Alertmanager, for the demo's
// stack (cmd/dtlocal) and for the tests (internal/amtest): the Debian
// package's binary, one instance without gossip.
package amlocal

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"time"
)

// Binary is the Alertmanager of the Debian/Ubuntu package
// prometheus-alertmanager.
const Binary = "/usr/bin/prometheus-alertmanager"

// Command is Alertmanager with its configuration file, its storage
// (silences and the notification log, not alerts) and its HTTP address.
// Gossip is off: one instance, and no second port to collide on.
func Command(config, storage, addr string) *exec.Cmd {
	return exec.Command(Binary,
		"--config.file="+config,
		"--storage.path="+storage,
		"--web.listen-address="+addr,
		"--cluster.listen-address=",
	)
}

// Ready asks the Alertmanager at base (http://host:port) whether it is
// ready, waiting at most 2 s for the answer.
func Ready(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/-/ready", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /-/ready: %s", resp.Status)
	}
	return nil
}
