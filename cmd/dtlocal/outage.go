package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	amclient "github.com/prometheus/alertmanager/api/v2/client"
	"github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/api/v2/models"

	"github.com/decisiontrace/decisiontrace/internal/conventions"
)

// cmdOutage is the drill of "the store being down must page": it stops the
// local ClickHouse under a running demo, keeps it down for a while, starts
// it again, and reports what on-call saw in Alertmanager meanwhile: when
// DecisionStoreUnavailable paged and how often, whether an alert that was
// active before was resolved or sent anew, whether rule-failing or no-data
// alerts appeared, and when the page resolved. It fails (exit 1) when any
// of that is wrong.
func cmdOutage(args []string) error {
	var s stack
	var down, pageWithin, resolveWithin, every time.Duration
	if err := s.parse("outage", args, func(fs *flag.FlagSet) {
		fs.DurationVar(&down, "for", 5*time.Minute, "how long ClickHouse stays down")
		fs.DurationVar(&pageWithin, "page-within", 3*time.Minute, "DecisionStoreUnavailable must be in Alertmanager this soon after ClickHouse stops")
		fs.DurationVar(&resolveWithin, "resolve-within", 3*time.Minute, "and resolved this soon after it is back")
		fs.DurationVar(&every, "poll", 5*time.Second, "how often Alertmanager is read")
	}); err != nil {
		return err
	}
	s.fromState()
	ctx := context.Background()
	pid, ok := runningPID(s.chPIDFile(), isChlocal)
	if !ok {
		return errors.New("ClickHouse is not running: start the demo (deploy/local/demo.sh) first")
	}
	am := amclient.New(httptransport.New(s.amAddr, amclient.DefaultBasePath, []string{"http"}), strfmt.Default)
	before, err := activeAlerts(ctx, am)
	if err != nil {
		return fmt.Errorf("Alertmanager at %s: %w", s.amURL(), err)
	}
	if _, down := before.byName(conventions.AlertStoreUnavailable); down {
		return fmt.Errorf("%s is already active: the store is down before the drill", conventions.AlertStoreUnavailable)
	}
	log.Info().Int("alerts", len(before)).Strs("names", before.names()).Msg("active in Alertmanager before the outage")

	var problems []string
	problem := func(format string, a ...any) {
		msg := fmt.Sprintf(format, a...)
		for _, p := range problems {
			if p == msg {
				return
			}
		}
		problems = append(problems, msg)
		log.Warn().Msg(msg)
	}
	pages := map[time.Time]bool{}
	var pagedAfter time.Duration
	stopped := time.Now()
	// watch reads Alertmanager once: the page, alerts that should not
	// appear, and (while the store is down) alerts active before that
	// ended or started anew.
	watch := func(outage bool) (active set, err error) {
		active, err = activeAlerts(ctx, am)
		if err != nil {
			log.Warn().Err(err).Msg("reading Alertmanager")
			return nil, err
		}
		for fp, a := range active {
			name := a.Labels["alertname"]
			switch {
			case name == conventions.AlertStoreUnavailable:
				starts := time.Time(*a.StartsAt)
				if pagedAfter == 0 {
					pagedAfter = time.Since(stopped)
					log.Info().Stringer("after", pagedAfter.Round(time.Second)).Msg(conventions.AlertStoreUnavailable + " is in Alertmanager")
				}
				pages[starts] = true
			case (name == conventions.AlertRuleFailing || name == conventions.AlertRuleNoData) && before[fp] == nil:
				problem("%s %v appeared", name, a.Labels)
			}
		}
		if outage {
			for fp, a := range before {
				now, ok := active[fp]
				switch {
				case !ok:
					problem("%s %v was resolved while the store was down", a.Labels["alertname"], a.Labels)
				case !time.Time(*now.StartsAt).Equal(time.Time(*a.StartsAt)):
					problem("%s %v started anew while the store was down", a.Labels["alertname"], a.Labels)
				}
			}
		}
		return active, nil
	}

	log.Info().Int("pid", pid).Stringer("for", down).Msg("stopping ClickHouse")
	if _, err := stopPID(pid, 15*time.Second); err != nil {
		return fmt.Errorf("stop ClickHouse (pid %d): %w", pid, err)
	}
	_ = os.Remove(s.chPIDFile())
	for time.Since(stopped) < down {
		time.Sleep(every)
		_, _ = watch(true)
	}
	if pagedAfter == 0 || pagedAfter > pageWithin {
		problem("%s did not reach Alertmanager within %s of the outage", conventions.AlertStoreUnavailable, pageWithin)
	}

	if err := s.upClickHouse(ctx); err != nil {
		return fmt.Errorf("starting ClickHouse again: %w", err)
	}
	back := time.Now()
	var resolvedAfter time.Duration
	for time.Since(back) < resolveWithin {
		time.Sleep(every)
		active, err := watch(false)
		if err != nil {
			continue
		}
		if _, down := active.byName(conventions.AlertStoreUnavailable); !down {
			resolvedAfter = time.Since(back)
			log.Info().Stringer("after", resolvedAfter.Round(time.Second)).Msg(conventions.AlertStoreUnavailable + " resolved")
			break
		}
	}
	if resolvedAfter == 0 {
		problem("%s still active %s after ClickHouse came back", conventions.AlertStoreUnavailable, resolveWithin)
	}
	if len(pages) > 1 {
		problem("%s paged %d times (distinct startsAt)", conventions.AlertStoreUnavailable, len(pages))
	}
	// After the store is back, an alert active before may end because
	// its condition did (the demo's incident moves on): reported, not
	// a failure.
	after, err := activeAlerts(ctx, am)
	if err == nil {
		kept := 0
		for fp, a := range before {
			if now, ok := after[fp]; ok && time.Time(*now.StartsAt).Equal(time.Time(*a.StartsAt)) {
				kept++
			} else {
				log.Info().Str("alert", a.Labels["alertname"]).Interface("labels", a.Labels).Msg("ended after the store came back")
			}
		}
		log.Info().Int("kept", kept).Int("of", len(before)).Msg("alerts active before, still active with the same start")
	}
	fmt.Printf("outage %s: %s in Alertmanager after %s (%d distinct), resolved %s after ClickHouse was back; %d problems\n",
		down, conventions.AlertStoreUnavailable, pagedAfter.Round(time.Second), len(pages), resolvedAfter.Round(time.Second), len(problems))
	for _, p := range problems {
		fmt.Println("  problem:", p)
	}
	if len(problems) > 0 {
		return exitCode(1)
	}
	return nil
}

// set is Alertmanager's active alerts by fingerprint.
type set map[string]*models.GettableAlert

func (s set) byName(name string) (*models.GettableAlert, bool) {
	for _, a := range s {
		if a.Labels["alertname"] == name {
			return a, true
		}
	}
	return nil, false
}

func (s set) names() []string {
	var out []string
	for _, a := range s {
		out = append(out, a.Labels["alertname"])
	}
	sort.Strings(out)
	return out
}

// activeAlerts is GET /api/v2/alerts: active alerts, inhibited and
// silenced ones included (still not resolved).
func activeAlerts(ctx context.Context, am *amclient.AlertmanagerAPI) (set, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ok, err := am.Alert.GetAlerts(alert.NewGetAlertsParamsWithContext(ctx))
	if err != nil {
		return nil, err
	}
	out := set{}
	for _, a := range ok.Payload {
		if a.Fingerprint != nil && a.StartsAt != nil {
			out[*a.Fingerprint] = a
		}
	}
	return out, nil
}
