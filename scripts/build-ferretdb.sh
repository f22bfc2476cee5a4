#!/usr/bin/env bash
# Builds FerretDB v1.24.2 — the MongoDB-wire server behind the gateway in
# tests, benchmarks and make run (with its SQLite backend) — from its Go
# module into .tools/bin/ferretdb. Its build embeds build/version/version.txt,
# which the module does not ship (FerretDB makes it from git): the module is
# copied out of the module cache and the file written before go build. Does
# nothing when the binary is there and reports that version. Needs Go and
# the Go module proxy; takes a few minutes the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
FERRETDB_VERSION=v1.24.2
if .tools/bin/ferretdb --version 2>/dev/null | grep -q "version: $FERRETDB_VERSION"; then
  exit 0
fi
command -v go >/dev/null 2>&1 || { echo "go is needed to build FerretDB" >&2; exit 1; }
echo "building FerretDB $FERRETDB_VERSION into .tools/bin/ (once, a few minutes)" >&2
src=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$src" ] && [ -d "$src" ] || { echo "go mod download of FerretDB $FERRETDB_VERSION failed" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$src/." "$tmp/"
chmod -R u+w "$tmp"
echo "$FERRETDB_VERSION" >"$tmp/build/version/version.txt"
mkdir -p .tools/bin
out="$PWD/.tools/bin/ferretdb"
(cd "$tmp" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$out.tmp" ./cmd/ferretdb)
mv "$out.tmp" "$out"
