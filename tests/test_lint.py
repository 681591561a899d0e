"""Code hygiene in the suite: ruff's curated rule set (pyproject.toml) and dependencies declared
exactly as imported."""
from __future__ import annotations

import ast
import importlib.metadata as md
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINTED = ["pipelines", "geo", "app_pages", "gridgov", "app.py", "tests", "notebooks"]
#: The installed product: what `dependencies` must cover exactly.
PRODUCT = ["pipelines", "geo", "app_pages", "gridgov", "app.py"]
FIRST_PARTY = {"pipelines", "geo", "app_pages", "gridgov", "tests", "app"}
#: Declared dependencies used without an import statement, and the text in the file that uses
#: them (checked below, so this list cannot outlive the use).
USED_BY_NAME = {
    "duckdb-extension-spatial": ("pipelines/db.py", "duckdb_extension_spatial"),
    "xstatic-leaflet": ("app_pages/assets.py", "xstatic.pkg.leaflet"),
    "xstatic-jquery": ("app_pages/assets.py", "xstatic.pkg.jquery"),
}


#: Modules the product imports only where an optional feature asks for them (inside a
#: ``try: … except ImportError`` with a message naming the extra) → the extra that provides them.
OPTIONAL = {"distributed": "dask"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(req: str) -> str:
    return _norm(re.match(r"\s*([A-Za-z0-9._-]+)", req).group(1))


def _provided(reqs: list[str]) -> set[str]:
    """Distributions a list of requirements installs by name: ``dask[distributed]`` also names
    ``distributed`` (the package extra of that name pulls in the distribution of that name)."""
    out = set()
    for r in reqs:
        out.add(_requirement_name(r))
        m = re.match(r"\s*[A-Za-z0-9._-]+\[([^]]*)\]", r)
        if m:
            out |= {_norm(e) for e in m.group(1).split(",") if e.strip()}
    return out


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _sources(paths: list[str]):
    for p in paths:
        path = ROOT / p
        for f in ([path] if path.is_file() else sorted(path.rglob("*"))):
            if "__pycache__" in f.parts or not f.is_file():
                continue
            if f.suffix == ".py":
                yield f, f.read_text(encoding="utf-8")
            elif f.suffix == ".ipynb":
                nb = json.loads(f.read_text(encoding="utf-8"))
                for cell in nb["cells"]:
                    if cell["cell_type"] == "code":
                        src = "".join(cell["source"])
                        yield f, "\n".join(line for line in src.splitlines()
                                           if not line.lstrip().startswith(("%", "!")))


def imported_modules(paths: list[str]) -> dict[str, set[str]]:
    """Top-level third-party modules imported anywhere under ``paths`` → files importing them."""
    found: dict[str, set[str]] = {}
    for f, src in _sources(paths):
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for n in names:
                top = n.split(".")[0]
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY and top != "__future__":
                    found.setdefault(top, set()).add(str(f.relative_to(ROOT)))
    return found


def distributions_of(modules) -> dict[str, str]:
    """Module → (normalised) distribution name, from the installed packages' metadata."""
    table = md.packages_distributions()
    out = {}
    for m in modules:
        dists = table.get(m)
        assert dists, f"module {m!r} is imported but no installed distribution provides it"
        out[m] = _norm(dists[0])
    return out


def test_ruff_check_passes():
    pytest.importorskip("ruff")
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", *LINTED],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def test_dependencies_are_declared_exactly_as_imported():
    declared = {_requirement_name(r) for r in _pyproject()["project"]["dependencies"]}
    imported = imported_modules(PRODUCT)
    extras = _pyproject()["project"]["optional-dependencies"]
    for module, extra in OPTIONAL.items():
        dist = distributions_of([module])[module]
        assert dist in _provided(extras[extra]), f"{module} is not provided by the {extra!r} extra"
        imported.pop(module, None)
    used = distributions_of(imported)
    missing = {m: d for m, d in used.items() if d not in declared}
    assert not missing, f"imported but not in [project] dependencies: {missing}"
    for dist, (path, text) in USED_BY_NAME.items():
        assert text in (ROOT / path).read_text(encoding="utf-8"), f"{dist}: {path} no longer uses {text}"
    unused = declared - set(used.values()) - set(USED_BY_NAME)
    assert not unused, f"declared in [project] dependencies but never imported: {sorted(unused)}"


@pytest.mark.parametrize("extra, paths", [("test", ["tests"]), ("notebook", ["notebooks"])])
def test_extras_cover_their_imports(extra, paths):
    project = _pyproject()["project"]
    have = _provided(project["dependencies"]) | _provided(project["optional-dependencies"][extra])
    used = distributions_of(imported_modules(paths))
    missing = {m: d for m, d in used.items() if d not in have}
    assert not missing, f"imported by {paths} but neither a dependency nor in the {extra!r} extra: {missing}"


def test_constraints_pin_every_declared_dependency():
    """constraints.txt (used by scripts/test.sh) pins each dependency of the product and its extras."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, ver = line.partition("==")
            assert ver, f"constraints.txt: {line!r} is not pinned with =="
            pins[_norm(name)] = ver
    project = _pyproject()["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    unpinned = sorted({_requirement_name(r) for r in reqs} - set(pins))
    assert not unpinned, f"not pinned in constraints.txt: {unpinned} (python scripts/constraints.py)"
    assert "constraints.txt" in (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
