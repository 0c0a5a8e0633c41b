"""Check that this Python environment has exactly the versions pinned in a requirements file.

    python tools/check_pins.py [binder/requirements.txt]

Exits 1 and lists each package that is missing or at another version. Used by the test suite
(the environment CI tests is the one Binder installs) and by tools/binder_check.sh.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1] / "binder" / "requirements.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def read_pins(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        if match is None:
            raise SystemExit(f"{path}:{number}: {line!r} is not an exact pin (name==version)")
        pins[match.group(1)] = match.group(2)
    return pins


def mismatches(pins: dict[str, str]) -> list[str]:
    problems = []
    for name, wanted in sorted(pins.items(), key=lambda kv: kv[0].lower()):
        try:
            found = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name}: pinned {wanted}, not installed")
            continue
        if found != wanted:
            problems.append(f"{name}: pinned {wanted}, installed {found}")
    return problems


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else DEFAULT
    pins = read_pins(path)
    problems = mismatches(pins)
    for line in problems:
        print(line)
    print(f"{len(pins) - len(problems)}/{len(pins)} pins of {path.name} match this environment")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
