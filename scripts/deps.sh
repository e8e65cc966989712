#!/usr/bin/env bash
# Installs the Debian packages taskmill needs to build and test, only those
# that are missing, without prompting. Safe to run again and again.
set -eu

pkgs=(
  build-essential pkg-config
  libmicrohttpd-dev libjansson-dev libsqlite3-dev
  libcurl4-openssl-dev libssl-dev
  curl sqlite3
)
[ "${1:-}" = "--test" ] && pkgs+=(libclang-rt-14-dev clang)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps.sh: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq </dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
