"""Errors that stop a run, each with a Chinese and an English message naming the file and the fix."""
from __future__ import annotations


class GridgovError(Exception):
    """Base class: a message a planner can act on, in Chinese and English."""

    def __init__(self, zh: str, en: str):
        self.zh = zh
        self.en = en
        super().__init__(f"{zh} / {en}")

    def text(self, lang: str = "zh") -> str:
        """The message in one language (``"zh"`` or ``"en"``), for a page."""
        return self.zh if lang == "zh" else self.en


class SettingsError(GridgovError):
    """gridgov.toml cannot be read or has a value the platform does not accept."""


class InputFileError(GridgovError):
    """A whole input file cannot be used (unreadable, missing required layer/column, unknown CRS)."""


class MostlyRejectedError(GridgovError):
    """Most rows of a layer were rejected: the run stops before good tables are replaced.

    Raised by :func:`pipelines.ingest.ingest` while the new database is still a temporary file, so
    the previous database stays as it was. ``[ingest] max_reject_share`` (default 0.5) sets the
    share above which this happens; 1.0 turns it off.
    """
