"""Write constraints.txt: the installed version of every package the project needs.

The closure of ``[project] dependencies`` and of every extra (test, notebook, bench) is walked
through the installed packages' metadata (environment markers evaluated for this Python), and
each package found is pinned to the version installed now — ``pip freeze`` filtered to the
project's dependency tree. ``scripts/test.sh`` installs with ``-c constraints.txt``, so the suite
runs on the versions it last passed with.

    python scripts/constraints.py            # rewrite constraints.txt
    python scripts/constraints.py --check    # exit 1 when constraints.txt is out of date
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import platform
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "constraints.txt"


def closure(roots: list[str]) -> dict[str, str]:
    """Canonical name → installed version of ``roots`` and everything they require."""
    seen: dict[str, str] = {}
    todo: list[tuple[str, frozenset]] = [(r, frozenset()) for r in roots]
    done: set[tuple[str, frozenset]] = set()
    while todo:
        spec, _ = todo.pop()
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        extras = frozenset(req.extras)
        if (name, extras) in done:
            continue
        done.add((name, extras))
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            sys.exit(f"{req.name} is required but not installed: pip install -e '.[test,notebook,bench]'")
        seen[name] = dist.version
        for sub in dist.requires or []:
            r = Requirement(sub)
            env = {"extra": ""}
            if r.marker is not None:
                if not any(r.marker.evaluate({"extra": e}) for e in extras) and \
                        not r.marker.evaluate(env):
                    continue
            todo.append((str(r).split(";")[0], frozenset()))
    return seen


def render() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    roots = list(project["dependencies"])
    for reqs in project.get("optional-dependencies", {}).values():
        roots += reqs
    pins = closure(roots)
    pins.pop(canonicalize_name(project["name"]), None)
    head = ("# Versions the test suite passed with: the installed dependency tree of gridgov and its\n"
            "# extras (test, notebook, bench). Written by `python scripts/constraints.py` on Python "
            f"{platform.python_version()};\n# used by scripts/test.sh (pip install -c constraints.txt).\n")
    return head + "".join(f"{n}=={v}\n" for n, v in sorted(pins.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare with constraints.txt")
    args = ap.parse_args()
    text = render()
    if args.check:
        old = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        body = [line for line in text.splitlines() if not line.startswith("#")]
        old_body = [line for line in old.splitlines() if not line.startswith("#")]
        if body != old_body:
            print("constraints.txt is out of date: python scripts/constraints.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"{OUT}: {len(text.splitlines()) - 3} packages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
