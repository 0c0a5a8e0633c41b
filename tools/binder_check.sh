#!/usr/bin/env bash
# The Binder environment check: build a fresh environment from binder/ the way Binder does
# (runtime.txt's Python, requirements.txt, then postBuild) and run the tutorials under nbval in it.
#
#   bash tools/binder_check.sh
#
# Checks, in that environment: every pin is installed at its version and `pip check` is clean;
# postBuild installed rustybt_nb and pointed JupyterLab at notebooks/01_quickstart.ipynb; every
# notebook passes nbval. Only pytest and nbval are added on top (they are not part of the Binder
# image). Nothing outside a temporary folder is touched.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

want="$(sed -n 's/^python-\([0-9.]*\).*/\1/p' "$ROOT/binder/runtime.txt")"
have="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ "$have" != "$want"* ]]; then
  echo "binder/runtime.txt asks for Python $want, but $PYTHON is $have" >&2
  exit 1
fi

echo "== fresh environment from binder/requirements.txt"
"$PYTHON" -m venv "$WORK/env"
# shellcheck disable=SC1091
source "$WORK/env/bin/activate"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -r "$ROOT/binder/requirements.txt"

echo "== binder/postBuild"
# A copy of the repository, so that building the package leaves the working tree untouched.
git -C "$ROOT" ls-files -z --cached --others --exclude-standard \
  | (cd "$ROOT" && xargs -0 tar -cf - --ignore-failed-read) | (mkdir -p "$WORK/repo" && tar -xf - -C "$WORK/repo")
export JUPYTER_CONFIG_DIR="$WORK/jupyter-config"
(cd "$WORK/repo" && bash binder/postBuild)

echo "== checks"
cd "$WORK"   # so that the source tree cannot shadow the installed package
python "$ROOT/tools/check_pins.py" "$ROOT/binder/requirements.txt"
python -m pip check
python - "$WORK" <<'PY'
import json, sys
from pathlib import Path
import rustybt_nb
work = Path(sys.argv[1])
where = Path(rustybt_nb.__file__).resolve()
assert "site-packages" in where.parts, f"rustybt_nb imported from {where}, not from the environment"
config = json.loads((work / "jupyter-config/jupyter_server_config.d/rustybt_nb.json").read_text())
url = config["ServerApp"]["default_url"]
assert url == "/lab/tree/notebooks/01_quickstart.ipynb", url
print(f"rustybt_nb {rustybt_nb.__version__} from the environment; JupyterLab opens {url}")
PY

echo "== tutorials under nbval"
python -m pip install --quiet "pytest==9.2.0" "nbval==0.11.0"
cd "$WORK/repo"
python -m pytest notebooks -p no:cacheprovider
