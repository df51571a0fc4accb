#!/usr/bin/env bash
# Prints the path of a usable `opa` 1.x binary, obtaining one if needed.
# Order: $OPSGATE_OPA_BIN; `opa` 1.x on PATH; a cached build; a build from
# Debian's packaged OPA source (no prebuilt binary can be downloaded here).
# Progress goes to stderr; only the binary's path goes to stdout.
set -euo pipefail

OPA_VERSION=1.4.2
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/opsgate"
CACHED_BIN="$CACHE/opa-$OPA_VERSION/opa"

say() { printf 'get-opa: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# No pipe into `grep -q` here: with pipefail, grep exiting early can fail the check.
is_opa_1x() {
  local out
  [ -x "$1" ] && out=$("$1" version 2>/dev/null) && [[ "$out" == "Version: 1."* ]]
}

if [ -n "${OPSGATE_OPA_BIN:-}" ]; then
  is_opa_1x "$OPSGATE_OPA_BIN" || die "OPSGATE_OPA_BIN=$OPSGATE_OPA_BIN is not an opa 1.x binary"
  echo "$OPSGATE_OPA_BIN"; exit 0
fi
if on_path=$(command -v opa 2>/dev/null) && is_opa_1x "$on_path"; then
  echo "$on_path"; exit 0
fi
if is_opa_1x "$CACHED_BIN"; then
  echo "$CACHED_BIN"; exit 0
fi

command -v apt-get >/dev/null || die "no opa found and no apt-get to build one; set OPSGATE_OPA_BIN"
say "no opa 1.x found; building OPA $OPA_VERSION from Debian's packaged source (1-2 minutes)"

WORK="$CACHE/opa-build"
rm -rf "$WORK"
APTDIR="$WORK/apt"; ROOT="$WORK/root"; DEBS="$WORK/debs"
mkdir -p "$APTDIR/lists/partial" "$APTDIR/archives/partial" "$APTDIR/etc/preferences.d" "$ROOT" "$DEBS"
touch "$APTDIR/status"

# The mirror this machine's apt already uses; the suites that carry the source.
MIRROR=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$MIRROR" ] || MIRROR=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$MIRROR" ] || die "cannot find a Debian mirror in /etc/apt sources"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$APTDIR/etc/sources.list" <<SRC
deb [signed-by=$KEYRING] $MIRROR forky main
deb [signed-by=$KEYRING] $MIRROR trixie main
SRC

# Private state, cache and source lists: the system's apt configuration is never touched.
APT=(-o "Dir::State=$APTDIR" -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::State::status=$APTDIR/status"
     -o "Dir::Cache=$APTDIR" -o "Dir::Cache::Archives=$APTDIR/archives"
     -o "Dir::Etc::SourceList=$APTDIR/etc/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
     -o "Dir::Etc::Preferences=/nonexistent" -o "Dir::Etc::PreferencesParts=$APTDIR/etc/preferences.d"
     -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1")

say "[1/5] reading package lists (forky, trixie)"
apt-get "${APT[@]}" -qq update >&2 || die "apt-get update failed on the private source list"

say "[2/5] resolving the dependency closure of golang-github-open-policy-agent-opa-dev"
mapfile -t PKGS < <(apt-cache "${APT[@]}" depends --recurse --no-recommends --no-suggests \
    --no-conflicts --no-breaks --no-replaces --no-enhances golang-github-open-policy-agent-opa-dev \
  | grep -E '^golang-[^ <>]*-dev$' | sort -u | grep -v '^golang-github-olekukonko-tablewriter-dev$')
[ "${#PKGS[@]}" -gt 10 ] || die "dependency closure looks wrong (${#PKGS[@]} packages)"
# tablewriter 1.x breaks OPA 1.4.2's build: pin trixie's 0.0.5-2.
PKGS+=(golang-github-olekukonko-tablewriter-dev=0.0.5-2 golang-1.26-go golang-1.26-src)

say "[3/5] downloading ${#PKGS[@]} packages"
(cd "$DEBS" && apt-get "${APT[@]}" -qq download "${PKGS[@]}" >&2) || die "apt-get download failed"

say "[4/5] unpacking"
for deb in "$DEBS"/*.deb; do dpkg -x "$deb" "$ROOT" || die "dpkg -x $deb failed"; done

say "[5/5] compiling opa"
GOROOT_DIR="$ROOT/usr/lib/go-1.26"
[ -x "$GOROOT_DIR/bin/go" ] || die "go toolchain missing after unpacking ($GOROOT_DIR/bin/go)"
mkdir -p "$(dirname "$CACHED_BIN")"
(cd "$WORK" && env GOROOT="$GOROOT_DIR" GOPATH="$ROOT/usr/share/gocode" GO111MODULE=off \
    GOTOOLCHAIN=local CGO_ENABLED=0 GOCACHE="$WORK/gocache" GOFLAGS= \
    "$GOROOT_DIR/bin/go" build -trimpath -ldflags "-s -w" -o "$CACHED_BIN" \
    github.com/open-policy-agent/opa >&2) || die "go build of opa failed (see output above)"

is_opa_1x "$CACHED_BIN" || die "built binary does not report an opa 1.x version"
"$CACHED_BIN" version | head -1 >&2
rm -rf "$WORK"
say "opa cached at $CACHED_BIN"
echo "$CACHED_BIN"
