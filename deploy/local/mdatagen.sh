#!/usr/bin/env bash
# Runs the collector's mdatagen on a component's metadata.yaml, writing its
# generated status and lifecycle tests:
#   deploy/local/mdatagen.sh connectors/decisionqueueconnector
# mdatagen is not installable with `go install` from the module proxy here
# (its version list is not served, and its go.mod points at sibling
# directories), so this builds v0.140.0, the newest version the proxy
# serves, from its module zip with those replacements dropped, into
# bin/mdatagen. Older components' generated files were written by hand in
# the same layout.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { echo "usage: $0 COMPONENT_DIR..." >&2; exit 2; }
version=v0.140.0
if [ ! -x bin/mdatagen ]; then
  dir="$(go mod download -json "go.opentelemetry.io/collector/cmd/mdatagen@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  cp -r "$dir/." "$tmp/"
  chmod -R u+w "$tmp"
  sed -i '/^replace/d; /=> \.\./d' "$tmp/go.mod"
  mkdir -p bin
  (cd "$tmp" && GOFLAGS=-mod=mod go build -o "$OLDPWD/bin/mdatagen" .)
fi
for c in "$@"; do
  (cd "$c" && "$OLDPWD/bin/mdatagen" metadata.yaml)
done
