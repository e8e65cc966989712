#!/usr/bin/env bash
# Installs what taskmill needs to build (and, with --test, to test): the
# Debian packages that are missing, and the npm packages of the
# compatibility tests (tests/compat, pinned by its package-lock.json).
# Never prompts; safe to run again and again.
set -eu
cd "$(dirname "$0")/.."

pkgs=(
  build-essential pkg-config
  libmicrohttpd-dev libjansson-dev libsqlite3-dev
  libcurl4-openssl-dev libssl-dev libxml2-dev libpq-dev
  curl sqlite3 openssl tzdata
)
testing=false
[ "${1:-}" = "--test" ] && testing=true
$testing && pkgs+=(libclang-rt-14-dev clang)
# The PostgreSQL server and psql: tests/run.sh runs the store and integration
# suites again on a throwaway cluster (scripts/pg.sh).
$testing && pkgs+=(postgresql)
# Node runs the compatibility tests; the machine may have its own newer one.
$testing && ! command -v node >/dev/null && pkgs+=(nodejs)
$testing && ! command -v npm >/dev/null && pkgs+=(npm)
# Debian's chromium runs the dashboard's browser tests (tests/browser, through playwright-core).
$testing && pkgs+=(chromium)
# libfaketime runs a node whose clock is ahead (test_multinode's clock check).
$testing && pkgs+=(faketime)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps.sh: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq </dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

# npm packages: installed again only when the lock file changed.
if $testing && [ -f tests/compat/package-lock.json ]; then
  stamp=tests/compat/node_modules/.taskmill-lock
  if [ ! -f "$stamp" ] || ! cmp -s tests/compat/package-lock.json "$stamp"; then
    echo "deps.sh: npm ci in tests/compat" >&2
    (cd tests/compat && npm ci --no-audit --no-fund </dev/null >&2)
    cp tests/compat/package-lock.json "$stamp"
  fi
fi
if $testing && [ -f tests/browser/package-lock.json ]; then
  stamp=tests/browser/node_modules/.taskmill-lock
  if [ ! -f "$stamp" ] || ! cmp -s tests/browser/package-lock.json "$stamp"; then
    echo "deps.sh: npm ci in tests/browser" >&2
    (cd tests/browser && npm ci --no-audit --no-fund </dev/null >&2)
    cp tests/browser/package-lock.json "$stamp"
  fi
fi
