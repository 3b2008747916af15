#!/usr/bin/env bash
# Installs the Debian packages wksp needs to build and test, only those that
# are missing.  Needs root (or passwordless sudo) only when something is
# missing; otherwise says exactly what to install and fails.
set -euo pipefail

pkgs=(gcc make pkg-config liblz4-dev libxxhash-dev libssl-dev python3)
[ "${WKSP_DEPS_EXTRA:-}" ] && pkgs+=(${WKSP_DEPS_EXTRA})

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing missing packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "deps: not root and no passwordless sudo; run as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Packages of another architecture (NAME:arm64, for `make test-aarch64`)
# need that architecture known to dpkg first.
for p in "${missing[@]}"; do
  case $p in
  *:*)
    a=${p##*:}
    if [ "$a" != "$(dpkg --print-architecture)" ] && ! dpkg --print-foreign-architectures | grep -qx "$a"; then
      echo "deps: adding the $a architecture to dpkg" >&2
      "${sudo[@]}" dpkg --add-architecture "$a"
    fi
    ;;
  esac
done
"${sudo[@]}" apt-get update -qq >&2 || true
"${sudo[@]}" apt-get install -y -qq "${missing[@]}" >&2
