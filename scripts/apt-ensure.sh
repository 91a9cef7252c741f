#!/usr/bin/env bash
# Install the Debian packages the tests need, only when a command is missing.
# Each line: <command to look for> <package>.
set -euo pipefail
needed=(
  "chromium chromium"
  "npm npm"
  "redis-server redis-server"
)
missing=()
for entry in "${needed[@]}"; do
  read -r cmd pkg <<<"$entry"
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
