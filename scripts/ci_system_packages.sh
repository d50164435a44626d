#!/usr/bin/env bash
# System packages some tests use when present: chromium (browser test), promtool from `prometheus`
# (metrics/rules validation) and docker-compose (compose.yaml validation). Idempotent and quiet:
# when every tool is already installed it returns at once without touching apt.
# Tests that need a missing tool skip with a reason, so this script is an accelerator, not a requirement.
set -euo pipefail

declare -A TOOL_PACKAGE=(
  [chromium]=chromium
  [promtool]=prometheus
  [docker-compose]=docker-compose
)

missing=()
for tool in "${!TOOL_PACKAGE[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${TOOL_PACKAGE[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ci_system_packages: apt-get not available; missing: ${missing[*]} (dependent tests will skip)" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "ci_system_packages: not root and no sudo; missing: ${missing[*]} (dependent tests will skip)" >&2
    exit 0
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt/dpkg rather than failing on its lock.
APT=(apt-get -qq -o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0)
# Refresh the package lists only when they are absent or older than a day.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
run_quiet() { "$@" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }; }
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 -print -quit 2>/dev/null)" ]; then
  run_quiet $SUDO "${APT[@]}" update
fi
# The prometheus server itself is not wanted running (only its promtool binary): policy-rc.d or the
# systemctl call below keeps it stopped.
run_quiet $SUDO "${APT[@]}" install -y --no-install-recommends "${missing[@]}"
if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
echo "ci_system_packages: installed ${missing[*]}"
