"""Shared AppTest helpers: open one page of the app on a project, read its metric cards."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.app.conftest import APP


def open_page(project: Path, monkeypatch, page: str, *, lang: str = "zh", timeout: float = 90) -> AppTest:
    """Run app.py on ``project``, switch to ``page`` (in ``lang``), and assert it raised nothing."""
    monkeypatch.setenv("GRIDGOV_PROJECT", str(project))
    monkeypatch.delenv("GRIDGOV_TILES", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=timeout).run()
    if lang != "zh":
        at.sidebar.radio(key="lang").set_value(lang).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def metrics(at: AppTest) -> dict[str, str]:
    """Metric cards as {label: value}."""
    return {m.label: m.value for m in at.metric}
