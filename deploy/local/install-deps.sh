#!/usr/bin/env bash
# Installs what decisiontrace needs on a fresh Debian/Ubuntu machine, from the
# distribution's packages, the Go module proxy and the npm registry only:
# Go (from the module proxy when missing or too old), npm (to fetch the
# embedded ClickHouse engine), Alertmanager, PostgreSQL and MariaDB (servers
# the tests start privately).
# Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
command -v unzip >/dev/null 2>&1 || need+=(unzip)
command -v npm >/dev/null 2>&1 || need+=(npm)
[ -x /usr/bin/prometheus-alertmanager ] || need+=(prometheus-alertmanager)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v git >/dev/null 2>&1 || need+=(git)
# Real database servers for the source freshness tests (each test starts
# its own private instance; the packages' system services are not used).
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || need+=(postgresql)
[ -x /usr/bin/mariadb-install-db ] && [ -x /usr/bin/my_print_defaults ] || need+=(mariadb-server-core mariadb-client-core)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  # Debian starts the packaged Alertmanager as a service where systemd runs;
  # the local stack runs its own on another port, so leave that one alone.
fi
export PATH="/usr/local/go/bin:$PATH"

# Go: the version go.mod names, from the Go module proxy (the same zip the go
# command's own toolchain switch downloads), when the machine's go is missing
# or too old to switch by itself (Debian 12's golang-go is 1.19).
want="$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)"
have="$(go env GOVERSION 2>/dev/null | sed 's/^go//' || true)"
if [ -z "$have" ] || [ "$(printf '%s\n%s\n' "$have" "1.21" | sort -V | head -1)" != "1.21" ]; then
  root="${DECISIONTRACE_HOME:-$HOME/.decisiontrace}/go$want"
  if [ ! -x "$root/bin/go" ]; then
    echo "installing Go $want into $root" >&2
    tmp="$(mktemp -d)"
    curl -fsSL -o "$tmp/go.zip" "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go$want.linux-$(dpkg --print-architecture).zip"
    (cd "$tmp" && unzip -q go.zip)
    mkdir -p "$(dirname "$root")"
    rm -rf "$root" && mv "$tmp/golang.org/toolchain@v0.0.1-go$want.linux-$(dpkg --print-architecture)" "$root"
    chmod +x "$root"/bin/* "$root"/pkg/tool/*/* 2>/dev/null || true
    rm -rf "$tmp"
  fi
  export PATH="$root/bin:$PATH"
fi
go version >&2

# The embedded ClickHouse engine (libchdb.so, ClickHouse 26.7), cached under
# ${DECISIONTRACE_HOME:-$HOME/.decisiontrace}/lib (fetch prints its path).
# Other versions: bin/dtlocal fetch --engine <npm version>.
mkdir -p bin
go build -o bin/dtlocal ./cmd/dtlocal
bin/dtlocal fetch >/dev/null
