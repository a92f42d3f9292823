#!/usr/bin/env bash
# The decisiontrace demo on one machine: embedded ClickHouse + Alertmanager
# (via dtlocal), the collector with deploy/local/collector.yaml, and the load
# generator at a gentle rate. Everything runs in the background and keeps its
# data, logs and pid files under ${DECISIONTRACE_HOME:-$HOME/.decisiontrace}.
#
#   deploy/local/demo.sh          start (or keep running) the whole demo
#   deploy/local/demo.sh down     stop it; data stays for the next start
#   deploy/local/demo.sh status
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"
home="${DECISIONTRACE_HOME:-$HOME/.decisiontrace}"
export DECISIONTRACE_HOME="$home"
rate="${DEMO_RATE:-50}"
mkdir -p "$home/logs" "$home/run"

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pid() {
  local f="$1"
  if running "$f"; then
    local pid; pid="$(cat "$f")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

case "${1:-up}" in
down)
  stop_pid "$home/run/dtloadgen.pid"
  stop_pid "$home/run/collector.pid"
  [ -x bin/dtlocal ] && bin/dtlocal down
  exit 0 ;;
status)
  for p in collector dtloadgen; do
    if running "$home/run/$p.pid"; then echo "$p: running (pid $(cat "$home/run/$p.pid"))"; else echo "$p: not running"; fi
  done
  exec bin/dtlocal status ;;
up) ;;
*) echo "usage: $0 [up|down|status]" >&2; exit 2 ;;
esac

. deploy/local/install-deps.sh
go build -o bin/ ./cmd/...
bin/dtlocal up

# With DECISIONTRACE_TOKEN_FILE set, every ingest endpoint requires that
# token (deploy/local/auth.yaml) and the generator sends it.
auth=()
[ -n "${DECISIONTRACE_TOKEN_FILE:-}" ] && auth=(--config deploy/local/auth.yaml)
if ! running "$home/run/collector.pid"; then
  GOMEMLIMIT="${GOMEMLIMIT:-300MiB}" DECISIONTRACE_QUEUE_DIR="$home/queue" nohup bin/decisiontrace --config deploy/local/collector.yaml "${auth[@]}" \
    >"$home/logs/collector.log" 2>&1 &
  echo $! >"$home/run/collector.pid"
fi
for _ in $(seq 1 150); do
  curl -fsS http://127.0.0.1:13133/ >/dev/null 2>&1 && break
  running "$home/run/collector.pid" || { echo "collector exited; see $home/logs/collector.log" >&2; tail -20 "$home/logs/collector.log" >&2; exit 1; }
  sleep 0.2
done

if ! running "$home/run/dtloadgen.pid"; then
  # policy-db, a source claims-triage depends on, stops updating 3 minutes
  # in and for 10 minutes: verdicts turn to unsupported certainty and the
  # staleness and unsupported-certainty alerts fire, then resolve.
  # Reviewers act about 2 minutes after a recommendation, outcomes follow
  # 2 minutes later.
  nohup bin/dtloadgen --protocol grpc --endpoint 127.0.0.1:4317 --rate "$rate" --batch 50 --workers 1 \
    --incident-source "${DEMO_INCIDENT_SOURCE:-policy-db}" --incident-after 3m --incident-for 10m --act-after 2m \
    >"$home/logs/dtloadgen.log" 2>&1 &
  echo $! >"$home/run/dtloadgen.pid"
fi

cat <<MSG

decisiontrace demo is running ($rate decision events/s).

  ClickHouse      clickhouse://127.0.0.1:19000  (HTTP http://127.0.0.1:18123), database decisiontrace
  Alertmanager    http://127.0.0.1:19093
  Collector       OTLP gRPC 127.0.0.1:4317, OTLP HTTP 127.0.0.1:4318
                  health http://127.0.0.1:13133/  own metrics http://127.0.0.1:8888/metrics
  Data and logs   $home  (logs/, run/, clickhouse/, queue/)

Queries to try. Decisions of the last 5 minutes per workflow, with the
layers seen, and the verdicts the store derives for workflows that have a
contract (deploy/contracts; pending: context still on its way):

  curl -s http://127.0.0.1:18123/ --data-binary "SELECT s.workflow AS workflow, count() AS decisions, countIf(length(s.layers_seen) = 5) AS all_five_layers, round(avg(s.confidence), 3) AS avg_confidence, countIf(s.human_action = 'overridden') AS overridden, countIf(v.context = 'pending') AS pending, countIf(v.context = 'stale') AS stale_context, countIf(v.context = 'missing') AS missing_context, countIf(v.unsupported_certainty) AS unsupported_certainty FROM decisiontrace.decision_summary AS s LEFT JOIN (SELECT decision_id, context, unsupported_certainty FROM decisiontrace.verdicts FINAL WHERE decision_time > now() - INTERVAL 10 MINUTE) AS v USING (decision_id) WHERE s.last_seen > now() - INTERVAL 5 MINUTE GROUP BY workflow ORDER BY workflow FORMAT PrettyCompact"

The latest unsupported-certainty verdicts, with the stalest source:

  curl -s http://127.0.0.1:18123/ --data-binary "SELECT decision_time, workflow, decision_id, confidence, context, stale_source, round(stale_age_s) AS age_s, stale_budget_s AS budget_s, missing_sources, behaviour FROM decisiontrace.verdicts FINAL WHERE unsupported_certainty AND decision_time > now() - INTERVAL 1 HOUR ORDER BY decision_time DESC LIMIT 10 FORMAT PrettyCompact"

How far each source's context reads trail its workflow's decisions:

  curl -s http://127.0.0.1:18123/ --data-binary "SELECT * FROM decisiontrace.read_lag ORDER BY workflow, source FORMAT PrettyCompact"

Alerts (rules in deploy/rules, and every contract's defaults), with every
state change; the demo's incident makes DecisionSourceStale and
DecisionUnsupportedCertainty fire about 5 minutes in:

  curl -s http://127.0.0.1:18123/ --data-binary "SELECT time, alertname, state, labels, annotations['summary'] AS summary FROM decisiontrace.alert_history ORDER BY time DESC LIMIT 20 FORMAT PrettyCompact"

Stop with: deploy/local/demo.sh down
MSG
