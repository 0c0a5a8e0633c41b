#!/usr/bin/env bash
# Regenerate binder/requirements.txt: install rustybt_nb[notebook,research] into a fresh environment and
# pin every package it ends up with (the package itself excluded; postBuild installs it).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"${PYTHON:-python3}" -m venv "$WORK/env"
"$WORK/env/bin/python" -m pip install --quiet --upgrade pip
"$WORK/env/bin/python" -m pip install --quiet "$ROOT[notebook,research]"
header="$(sed -n '/^#/p' "$ROOT/binder/requirements.txt")"
{
  printf '%s\n' "$header"
  "$WORK/env/bin/python" -m pip freeze --exclude-editable | grep -v -i '^rustybt' | grep -v '^-e'
} > "$ROOT/binder/requirements.txt"
echo "wrote $(grep -vc '^#' "$ROOT/binder/requirements.txt") pins to binder/requirements.txt"
