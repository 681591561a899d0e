"""gridgov placeholder (API follows)."""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("gridgov")
except PackageNotFoundError:  # a source checkout that was never installed
    __version__ = "0+unknown"
