"""gridgov installs anywhere: a wheel in a fresh venv, used from another folder, runs demo, run
and app (#8). The package list and package data are checked without building anything."""
from __future__ import annotations

import fnmatch
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("GRIDGOV_CHROMIUM", "/usr/bin/chromium")
#: what the wheel is built from (a copy, so the build leaves nothing in the checkout)
SOURCES = ["pyproject.toml", "README.md", "app.py", "pipelines", "geo", "app_pages", "gridgov", "data"]


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def _package_dirs() -> dict[str, Path]:
    conf = _setuptools()
    mapping = conf.get("package-dir", {})
    return {p: ROOT / mapping.get(p, p.replace(".", "/")) for p in conf["packages"]}


def test_every_package_of_the_tree_is_installed():
    listed = set(_setuptools()["packages"])
    for top in ("pipelines", "geo", "app_pages", "gridgov"):
        for init in (ROOT / top).rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            name = ".".join(init.parent.relative_to(ROOT).parts)
            assert name in listed, f"{name} has an __init__.py but is not in [tool.setuptools] packages"
    for name, path in _package_dirs().items():
        assert path.is_dir(), f"package {name}: {path} does not exist"


def test_package_data_names_files_that_exist_and_covers_every_data_file():
    dirs = _package_dirs()
    data = _setuptools().get("package-data", {})
    for pkg, patterns in data.items():
        for pat in patterns:
            assert list(dirs[pkg].glob(pat)), f"package-data {pkg}: {pat!r} matches no file"
    for pkg, base in dirs.items():
        for f in base.rglob("*"):
            if not f.is_file() or "__pycache__" in f.parts or f.suffix in (".py", ".pyc"):
                continue
            owner = max((d for d in dirs.values() if d in f.parents), key=lambda d: len(d.parts))
            if owner != base:
                continue  # belongs to a sub-package, checked there
            rel = f.relative_to(base).as_posix()
            if rel.startswith("static/"):
                continue  # app_pages/static/: vendored at run time by app_pages/assets.py
            assert any(fnmatch.fnmatch(rel, pat) for pat in data.get(pkg, [])), \
                f"{pkg}: {rel} would be left out of the wheel (add it to package-data)"


# ---- the wheel in a fresh venv ---------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def _sh(cmd: list, cwd: Path, timeout: int = 300, env: dict | None = None) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """A wheel built from a copy of the sources, installed (no dependencies) into a venv that sees
    this interpreter's packages; returns the venv's ``gridgov`` and python, and a work folder."""
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "static"))
        else:
            shutil.copy2(p, src / name)
    _sh([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", base / "dist", src], base)
    wheel = next((base / "dist").glob("gridgov-*.whl"))
    venv = base / "venv"
    _sh([sys.executable, "-m", "venv", "--system-site-packages", venv], base)
    py = venv / "bin" / "python"
    _sh([py, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", wheel], base)
    work = base / "elsewhere"
    work.mkdir()
    where = _sh([py, "-c", "import pipelines, app_pages, gridgov; "
                           "print(pipelines.__file__, app_pages.__file__, gridgov.__file__)"], work)
    for f in where.split():  # the wheel's copy, not the checkout (nor an editable install)
        assert str(venv) in f, where
    return {"gridgov": venv / "bin" / "gridgov", "python": py, "work": work, "wheel": wheel}


@pytest.mark.slow
def test_wheel_holds_app_pages_and_demo_sources(installed):
    import zipfile

    names = zipfile.ZipFile(installed["wheel"]).namelist()
    assert "app_pages/__init__.py" in names and "gridgov/__init__.py" in names
    assert "gridgov/demo_data/hohhot/hohhot_districts_tianditu_wgs84.geojson" in names
    assert not any(n.startswith(("tests/", "data/", "notebooks/")) for n in names)


@pytest.mark.slow
def test_wheel_runs_demo_run_and_app_from_another_folder(installed):
    gridgov, work = installed["gridgov"], installed["work"]
    version = _sh([gridgov, "--version"], work).strip()
    assert re.fullmatch(r"gridgov \d+\.\d+\.\d+.*", version), version

    out = _sh([gridgov, "demo", "city", "--small", "-q"], work)
    assert "buildings" in out and (work / "city" / "streets.geojson").exists()
    out = _sh([gridgov, "run", "city", "-q"], work, timeout=600)
    assert "运行 / run" in out and "ok in" in out and (work / "city" / "gridgov.duckdb").exists()

    port = _free_port()
    app = subprocess.Popen([str(gridgov), "app", "city", "--port", str(port)], cwd=work,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        status = 0
        for _ in range(240):  # at most ~60 s
            if app.poll() is not None:
                break
            try:
                status, _body = _get(url + "/_stcore/health", timeout=1)
            except OSError:
                status = 0
            if status == 200:
                break
            time.sleep(0.25)
        assert status == 200, f"the app did not answer: {app.poll()} {app.stdout.read() if app.poll() is not None else ''}"
        status, body = _get(url + "/")
        assert status == 200 and b"<html" in body.lower()
        leaflet = f"{url}/app/static/vendor/leaflet/leaflet.js"  # vendored by `gridgov app`
        status, body = _get(leaflet)
        assert status == 200 and b"leaflet" in body[:3000].lower(), f"{leaflet} answered {status}"
        _open_map_and_check_it_draws(url)
    finally:
        if app.poll() is None:
            os.killpg(app.pid, signal.SIGTERM)
            try:
                app.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(app.pid, signal.SIGKILL)
                app.wait(15)


def _open_map_and_check_it_draws(url: str) -> None:
    """The installed app's map page draws a Leaflet map in headless Chromium, offline."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {CHROMIUM}: scripts/test.sh installs it")
        return  # health, page and static route answered; the drawing needs a browser
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            external = []

            def only_the_app(route):
                if route.request.url.startswith(url):
                    route.continue_()
                else:  # offline: nothing may come from elsewhere
                    external.append(route.request.url)
                    route.abort()

            page.route("**/*", only_the_app)
            page.goto(url + "/map", wait_until="domcontentloaded", timeout=60_000)
            frame = page.frame_locator("iframe[title='streamlit_folium.st_folium']").first
            frame.locator(".leaflet-container").first.wait_for(timeout=60_000)
            frame.locator("path.leaflet-interactive").first.wait_for(timeout=60_000)  # data drawn
            assert not [u for u in external if "leaflet" in u or "jquery" in u], external
        finally:
            browser.close()
