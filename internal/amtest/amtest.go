// Package amtest starts a private Alertmanager (Debian's
// /usr/bin/prometheus-alertmanager, as cmd/dtlocal runs it) for integration
// tests: its own free port, its own storage directory, gossip clustering off,
// one receiver without notifier. Tests read what Alertmanager holds through
// its API v2 with the client of github.com/prometheus/alertmanager.
package amtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	amclient "github.com/prometheus/alertmanager/api/v2/client"
	"github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/api/v2/models"

	"github.com/decisiontrace/decisiontrace/internal/amlocal"
	"github.com/decisiontrace/decisiontrace/internal/testenv"
)

// Binary is the Alertmanager the tests run.
const Binary = amlocal.Binary

// config has no notifier: alerts are only held, which is all the tests read.
// group_wait and friends do not matter for GET /api/v2/alerts.
const config = `route:
  receiver: "null"
receivers:
  - name: "null"
`

// notifyingConfig sends every alert, in a group of its own, to a webhook as
// soon as Alertmanager has it, and every change (a new alert, a resolve)
// within a second; an unchanged alert is notified again only after an hour.
// A test therefore sees one notification per real state change, and any
// spurious resolve or re-fire as an extra one.
const notifyingConfig = `route:
  receiver: hook
  group_by: ['...']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: %q
        send_resolved: true
`

// Alertmanager is one running private instance.
type Alertmanager struct {
	t    testing.TB
	addr string
	dir  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts an Alertmanager on a free port of 127.0.0.1 and waits until
// /-/ready answers. It is stopped when the test ends. A missing binary fails
// the test: the claims of the integration suite need the real server.
func Start(t testing.TB) *Alertmanager {
	t.Helper()
	return start(t, config)
}

// StartNotifying starts an Alertmanager that notifies a webhook of this
// test (see notifyingConfig); Notifications returns what it received.
func StartNotifying(t testing.TB) (*Alertmanager, *Webhook) {
	t.Helper()
	hook := &Webhook{}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	return start(t, fmt.Sprintf(notifyingConfig, srv.URL)), hook
}

// StartWith starts an Alertmanager with the configuration cfg (YAML), such
// as the one decisiontrace ships.
func StartWith(t testing.TB, cfg string) *Alertmanager {
	t.Helper()
	return start(t, cfg)
}

func start(t testing.TB, cfg string) *Alertmanager {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Fatalf("%s is missing (apt-get install -y prometheus-alertmanager): %v", Binary, err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	am := &Alertmanager{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t))), dir: dir}
	am.start()
	t.Cleanup(am.Stop)
	return am
}

// URL is the base URL to configure as an endpoint, e.g. http://127.0.0.1:PORT.
func (am *Alertmanager) URL() string { return "http://" + am.addr }

func (am *Alertmanager) start() {
	am.t.Helper()
	logf, err := os.OpenFile(filepath.Join(am.dir, "alertmanager.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		am.t.Fatal(err)
	}
	defer logf.Close()
	// After Restart it holds no alert until one is sent again: its
	// storage keeps silences and the notification log, not alerts.
	cmd := amlocal.Command(filepath.Join(am.dir, "alertmanager.yml"), filepath.Join(am.dir, "data"), am.addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		am.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	am.mu.Lock()
	am.cmd, am.exited = cmd, exited
	am.mu.Unlock()

	deadline := time.Now().Add(15 * time.Second)
	for {
		err := amlocal.Ready(context.Background(), am.URL())
		if err == nil {
			return
		}
		select {
		case <-exited:
			am.t.Fatalf("Alertmanager exited during start-up:\n%s", am.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			am.Stop()
			am.t.Fatalf("Alertmanager not ready after 15s: %v\n%s", err, am.Log())
		}
	}
}

// Stop kills Alertmanager and waits for it to exit; the port is free
// afterwards. Stopping a stopped instance does nothing.
func (am *Alertmanager) Stop() {
	am.mu.Lock()
	cmd, exited := am.cmd, am.exited
	am.cmd = nil
	am.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart starts a stopped instance again on the same address and storage.
func (am *Alertmanager) Restart() {
	am.t.Helper()
	am.Stop()
	am.start()
}

// Log is what Alertmanager wrote so far, for failure messages.
func (am *Alertmanager) Log() string {
	b, _ := os.ReadFile(filepath.Join(am.dir, "alertmanager.log"))
	return string(b)
}

// Client is an API v2 client for this instance.
func (am *Alertmanager) Client() *amclient.AlertmanagerAPI {
	return amclient.New(httptransport.New(am.addr, amclient.DefaultBasePath, []string{"http"}), strfmt.Default)
}

// Alerts is GET /api/v2/alerts with Alertmanager's defaults (active,
// silenced, inhibited and unprocessed alerts; never resolved ones), narrowed
// by matchers such as `alertname="X"`.
func (am *Alertmanager) Alerts(filter ...string) (models.GettableAlerts, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ok, err := am.Client().Alert.GetAlerts(alert.NewGetAlertsParamsWithContext(ctx).WithFilter(filter))
	if err != nil {
		return nil, err
	}
	return ok.Payload, nil
}

// Notification is one alert of a webhook notification, in Alertmanager's
// documented webhook format.
type Notification struct {
	Status      string            `json:"status"` // firing or resolved
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

// Webhook records the notifications Alertmanager sends.
type Webhook struct {
	mu   sync.Mutex
	got  []Notification
	errs []error
}

func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Alerts []Notification `json:"alerts"`
	}
	err := json.NewDecoder(r.Body).Decode(&msg)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.errs = append(h.errs, err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.got = append(h.got, msg.Alerts...)
}

// Notifications are the alerts notified so far, in arrival order, with the
// alert name; a payload that did not decode fails the test.
func (h *Webhook) Notifications(t testing.TB, alertname string) []Notification {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.errs) > 0 {
		t.Fatalf("webhook payloads that did not decode: %v", h.errs)
	}
	var out []Notification
	for _, n := range h.got {
		if alertname == "" || n.Labels["alertname"] == alertname {
			out = append(out, n)
		}
	}
	return out
}
