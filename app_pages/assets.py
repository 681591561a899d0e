"""Serve Leaflet and jQuery from the app itself, so the map works without internet.

folium elements name their JavaScript and CSS in ``default_js`` / ``default_css`` as CDN
URLs; streamlit-folium collects those lists and its iframe loads each script in turn with
``<script src>``, waiting for each one — one unreachable CDN and the map stays blank. Here we

1. copy Leaflet and jQuery from the installed ``xstatic`` packages into ``static/vendor/``
   next to ``app.py`` (:func:`ensure_vendor`; Streamlit serves that folder at
   ``app/static/`` when ``server.enableStaticServing`` is on — see ``.streamlit/config.toml``);
2. rewrite every element's ``default_js`` / ``default_css`` *on the instance* to point there,
   dropping what we do not ship (Bootstrap, Font Awesome, awesome-markers: the maps use
   circle markers and plain-HTML legends instead) — :func:`localize_map`.

The URLs are relative to the streamlit-folium iframe, which Streamlit serves from
``<base>/component/streamlit_folium.st_folium/index.html``; ``../../app/static/…`` therefore
reaches ``<base>/app/static/…`` whatever ``server.baseUrlPath`` or reverse-proxy prefix is in
front of the app. When static serving is off, :func:`localize_map` can inline the files as
``data:`` URLs instead (slower: ~300 kB per map render, but still offline).
"""
from __future__ import annotations

import base64
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import folium

log = logging.getLogger(__name__)

APP_DIR = Path(__file__).resolve().parents[1]
#: ``static/`` next to the checkout's ``app.py`` (used outside a Streamlit run).
STATIC_DIR = APP_DIR / "static"


def static_dir() -> Path:
    """The folder Streamlit serves at ``/app/static``: ``static/`` next to the main script
    of this run (``app.py`` of a checkout, ``app_pages/main.py`` of an install)."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx(suppress_warning=True)
        if ctx is not None and ctx.main_script_path:
            return Path(ctx.main_script_path).resolve().parent / "static"
    except Exception:  # noqa: BLE001 - outside Streamlit, or another Streamlit version
        pass
    return STATIC_DIR
VENDOR = "vendor"

#: URL of ``static/`` as seen from inside the streamlit-folium component iframe.
IFRAME_STATIC_URL = "../../app/static"


@dataclass(frozen=True)
class Asset:
    """One vendored file: the folium resource name it replaces, its source and target."""

    name: str
    kind: str  # "js" or "css"
    package: str  # xstatic package module
    source: str  # path inside the package's data dir
    target: str  # path under static/vendor/


ASSETS: tuple[Asset, ...] = (
    Asset("leaflet", "js", "xstatic.pkg.leaflet", "leaflet.js", "leaflet/leaflet.js"),
    Asset("leaflet_css", "css", "xstatic.pkg.leaflet", "leaflet.css", "leaflet/leaflet.css"),
    Asset("jquery", "js", "xstatic.pkg.jquery", "jquery.min.js", "jquery/jquery.min.js"),
)
#: Folders copied along with a package's files (Leaflet's CSS refers to images/layers.png).
EXTRA_DIRS = {"xstatic.pkg.leaflet": {"images": "leaflet/images"}}


def package_dir(module: str) -> Path:
    """Data folder of an installed xstatic package (its ``BASE_DIR``)."""
    import importlib

    mod = importlib.import_module(module)
    return Path(mod.BASE_DIR)


def ensure_vendor(folder: Path | None = None) -> Path:
    """Copy the vendored JS/CSS into ``<folder>/vendor`` (default: :func:`static_dir`; only
    files that are missing or stale).

    Returns the vendor folder. Raises ``OSError``/``ImportError`` when the files cannot be
    provided; callers show that as a warning (the map then needs the internet).
    """
    vendor = (folder or static_dir()) / VENDOR
    copies: list[tuple[Path, Path]] = []
    for asset in ASSETS:
        copies.append((package_dir(asset.package) / asset.source, vendor / asset.target))
    for module, dirs in EXTRA_DIRS.items():
        base = package_dir(module)
        for src_dir, dst_dir in dirs.items():
            for src in sorted((base / src_dir).glob("*")):
                copies.append((src, vendor / dst_dir / src.name))
    for src, dst in copies:
        if dst.exists() and dst.stat().st_size == src.stat().st_size:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_suffix(dst.suffix + ".tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)  # atomic: a concurrent session never sees half a file
        log.info("vendored %s", dst)
    return vendor


def _data_url(asset: Asset) -> str:
    data = (package_dir(asset.package) / asset.source).read_bytes()
    mime = "text/javascript" if asset.kind == "js" else "text/css"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def asset_urls(*, base_url: str = IFRAME_STATIC_URL, inline: bool = False) -> dict[str, str]:
    """Map folium resource names (``leaflet``, ``leaflet_css``, ``jquery``) to local URLs."""
    if inline:
        return {a.name: _data_url(a) for a in ASSETS}
    return {a.name: f"{base_url.rstrip('/')}/{VENDOR}/{a.target}" for a in ASSETS}


def _walk(element):
    yield element
    for child in getattr(element, "_children", {}).values():
        yield from _walk(child)


def localize_map(
    m: folium.Map, *, base_url: str = IFRAME_STATIC_URL, inline: bool = False
) -> list[str]:
    """Point every element of ``m`` at the vendored files; return the resource names dropped.

    Only instance attributes are set, so folium's class-level defaults (used by notebooks in
    the same process) are left alone. Call this after the map is complete, before rendering.
    """
    urls = asset_urls(base_url=base_url, inline=inline)
    dropped: list[str] = []
    for element in _walk(m):
        for attr in ("default_js", "default_css"):
            links = getattr(element, attr, None)
            if not links:
                continue
            kept = []
            for name, url in links:
                if name in urls:
                    kept.append((name, urls[name]))
                elif not url.startswith(("http://", "https://", "//")):
                    kept.append((name, url))
                else:
                    dropped.append(name)
            setattr(element, attr, kept)
    if dropped:
        log.debug("not loaded (no local copy): %s", sorted(set(dropped)))
    return sorted(set(dropped))
