#!/usr/bin/env bash
# Puts Redoc's standalone bundle (the /schema API reference page's only script) where the service
# serves it from, service/http/static/, and prints its path.  The bundle comes from the npm registry
# (`npm pack`, a pinned version) into a cache, checked against a pinned sha256; it is not committed.
# One change is made to it: the vendor logo that Redoc's menu loads from the vendor's CDN becomes an
# empty data: URL, so the page asks nothing of any other host.
# Progress goes to stderr; only the bundle's path goes to stdout.
set -euo pipefail

REDOC_VERSION=2.5.1
UPSTREAM_SHA256=2d8d13e94b5a21011cc6f8260d87ca475d0f6f2faed16dd12e7394dfa3bb05b8  # package/bundles/redoc.standalone.js
SERVED_SHA256=673325b4fc9dcdd6243fc82a106c4c89ab4fbba8c2268b59458969b771c9c8ed    # the same, logo made local
LOGO='"https://cdn.redoc.ly/redoc/logo-mini.svg"'
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="$ROOT/service/http/static/redoc.standalone.js"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/opsgate/redoc-$REDOC_VERSION"
CACHED="$CACHE/redoc.standalone.js"

say() { printf 'get-redoc: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
has_sha() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

if has_sha "$TARGET" "$SERVED_SHA256"; then
  echo "$TARGET"; exit 0
fi
if ! has_sha "$CACHED" "$SERVED_SHA256"; then
  "$ROOT/scripts/need-debian-package.sh" npm npm "to fetch redoc@$REDOC_VERSION once" >&2 \
    || die "npm is needed once to fetch redoc@$REDOC_VERSION"
  say "fetching redoc@$REDOC_VERSION from the npm registry"
  WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
  (cd "$WORK" && npm pack --silent "redoc@$REDOC_VERSION" >/dev/null) || die "npm pack redoc@$REDOC_VERSION failed"
  BUNDLE="$WORK/package/bundles/redoc.standalone.js"
  tar -xzf "$WORK/redoc-$REDOC_VERSION.tgz" -C "$WORK" package/bundles/redoc.standalone.js \
    package/bundles/redoc.standalone.js.LICENSE.txt package/LICENSE || die "unexpected redoc package layout"
  has_sha "$BUNDLE" "$UPSTREAM_SHA256" || die "redoc.standalone.js does not match the pinned sha256"
  sed "s#$LOGO#\"data:,\"#" "$BUNDLE" >"$BUNDLE.served"
  has_sha "$BUNDLE.served" "$SERVED_SHA256" || die "the logo could not be made local in redoc.standalone.js"
  mkdir -p "$CACHE"
  cp "$WORK/package/LICENSE" "$CACHE/LICENSE"
  cp "$WORK/package/bundles/redoc.standalone.js.LICENSE.txt" "$CACHE/redoc.standalone.js.LICENSE.txt"
  cp "$BUNDLE.served" "$CACHED"
fi
mkdir -p "$(dirname "$TARGET")"
cp "$CACHE/LICENSE" "$(dirname "$TARGET")/redoc.LICENSE"
cp "$CACHED" "$TARGET.tmp" && mv "$TARGET.tmp" "$TARGET"
say "redoc $REDOC_VERSION at $TARGET"
echo "$TARGET"
