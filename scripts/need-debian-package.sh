#!/usr/bin/env bash
# Usage: need-debian-package.sh COMMAND PACKAGE WHY
# Installs Debian's PACKAGE when COMMAND is missing: as root, or through sudo.
set -euo pipefail
command="$1" package="$2" why="$3"
command -v "$command" >/dev/null && exit 0
echo "installing Debian's $package $why"
sudo=""
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "$command is missing; installing it needs root and there is no sudo: run 'apt-get install -y $package' as root" >&2
    exit 1
  fi
  sudo=sudo
fi
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
