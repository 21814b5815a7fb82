#!/usr/bin/env bash
# Builds FerretDB (a MongoDB-wire server, here on SQLite) for the tests, once per machine,
# and prints the path of the binary. The version is the one tools/ferretdb/go.mod pins
# (with its hash in go.sum).
#
# The binary lives in ${XDG_CACHE_HOME:-$HOME/.cache}/chatorbit-ferretdb/<version>/ferretdb,
# shared by every clone on the machine like the ccache directory: when it is there and
# `--version` names the pinned version, this does nothing (and needs no Go). Otherwise it
# builds it (~2 minutes cold; needs Go >= 1.24 and the Go module proxy) and installs it
# with a rename, so a reader never sees half a binary.
#
# Why not `go build` of the tool straight from the module: FerretDB embeds
# build/version/version.txt, which its release process generates and the module zip
# lacks; built as its own main module without it, the binary panics at start ("Invalid
# build/version/version.txt file content"), and built as a dependency of ours it reports
# version "unknown". So it is built from a writable copy of the module's source, as the
# main module, with that file written in.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MODULE=github.com/FerretDB/FerretDB
TOOLS=$ROOT/tools/ferretdb

log() { printf '\033[1;34m[build_ferretdb]\033[0m %s\n' "$*" >&2; }
die() {
  printf 'build_ferretdb.sh: %s\n' "$*" >&2
  exit 1
}

VERSION=$(sed -n "s|^[[:space:]]*$MODULE \(v[^[:space:]]*\).*|\1|p" "$TOOLS/go.mod")
[ -n "$VERSION" ] || die "no 'require $MODULE vX.Y.Z' line in $TOOLS/go.mod"
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/chatorbit-ferretdb/$VERSION
BIN=$CACHE/ferretdb

# Whether $1 runs and says it is $VERSION.
works() { [ -x "$1" ] && [ "$("$1" --version 2>/dev/null | sed -n 's/^version: //p')" = "$VERSION" ]; }

if works "$BIN"; then
  echo "$BIN"
  exit 0
fi

command -v go >/dev/null || die "Go >= 1.24 is needed to build FerretDB $VERSION, and there is no 'go' in PATH (Debian 12's golang-go is 1.19: too old)"
# FerretDB's go.mod says 'go 1.24'. GOTOOLCHAIN=local: an older Go fails here with this
# message instead of fetching a newer toolchain.
export GOTOOLCHAIN=local GOWORK=off CGO_ENABLED=0
goversion=$(go env GOVERSION)
if ! printf '%s\n' "$goversion" | awk -F'[go.]+' '{ exit !($2 > 1 || ($2 == 1 && $3 >= 24)) }'; then
  die "Go >= 1.24 is needed to build FerretDB $VERSION; 'go' in PATH is $goversion"
fi

mkdir -p "$CACHE"
# Two clones running setup at once: the second waits, then finds the first one's binary.
exec 9>"$CACHE/.lock"
flock 9
if works "$BIN"; then
  echo "$BIN"
  exit 0
fi

log "building FerretDB $VERSION into $CACHE (about 2 minutes the first time)"
started=$SECONDS
# Verifies the module against tools/ferretdb/go.sum, then finds its (read-only) copy in
# the module cache.
(cd "$TOOLS" && go mod download "$MODULE")
src=$(cd "$TOOLS" && go list -m -f '{{.Dir}}' "$MODULE")
[ -f "$src/go.mod" ] || die "go list found no source for $MODULE $VERSION (got '$src')"

work=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -R "$src" "$work/src"
chmod -R u+w "$work/src"
printf '%s\n' "$VERSION" >"$work/src/build/version/version.txt"
# -trimpath keeps the temporary path out of the binary; -buildvcs=false, in case the
# cache directory sits inside some git checkout.
(cd "$work/src" && go build -trimpath -buildvcs=false -o "$work/ferretdb" ./cmd/ferretdb)
works "$work/ferretdb" || die "the binary just built does not report version $VERSION: $("$work/ferretdb" --version 2>&1 || true)"
mv -f "$work/ferretdb" "$BIN"
log "built in $((SECONDS - started)) s"
echo "$BIN"
