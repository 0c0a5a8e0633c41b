"""The Binder folder is consistent with what CI tests.

The full proof (a fresh environment built from ``binder/`` running the tutorials under nbval) is
``tools/binder_check.sh``, run by ``make test``; these are the quick checks on this environment.
"""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"


def test_this_environment_has_exactly_the_pinned_versions():
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "check_pins.py"), str(BINDER / "requirements.txt")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_pins_cover_every_runtime_and_notebook_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"]) + list(project["optional-dependencies"]["notebook"])
    pinned = {re.split("==", line)[0].lower().replace("_", "-")
              for line in (BINDER / "requirements.txt").read_text().splitlines()
              if line and not line.startswith("#")}
    for requirement in wanted:
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0).lower().replace("_", "-")
        assert name in pinned, f"{name} (pyproject.toml) is not pinned in binder/requirements.txt"


def test_runtime_matches_the_supported_python():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert runtime == f"python-{sys.version_info.major}.{sys.version_info.minor}", runtime


def test_post_build_installs_the_package_and_opens_the_quickstart():
    script = (BINDER / "postBuild").read_text()
    assert "pip install --no-deps" in script
    assert "/lab/tree/notebooks/01_quickstart.ipynb" in script
    assert (ROOT / "notebooks" / "01_quickstart.ipynb").is_file()
