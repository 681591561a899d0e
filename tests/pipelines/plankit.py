"""Shared by the plan-equality tests (determinism, Dask): draw the grids stage in a fresh
interpreter and read back which grid each building landed in."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd

from pipelines.db import connect, read_table

ROOT = Path(__file__).resolve().parents[2]

#: The grids stage on an ingested project (what ``gridgov run`` does after ingest). A script
#: file, not ``-c``: Dask's and multiprocessing's workers may re-import ``__main__``.
DRAW = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pipelines import stage_grids
    from pipelines.config import load_settings
    from pipelines.db import connect
    if __name__ == "__main__":
        project = Path(sys.argv[1])
        con = connect(project / "gridgov.duckdb")
        try:
            stage_grids.run(con, load_settings(project))
        finally:
            con.close()
""")


def env(**extra: str) -> dict[str, str]:
    """This environment with the checkout on ``PYTHONPATH`` (plus ``extra``)."""
    out = dict(os.environ, **extra)
    out["PYTHONPATH"] = os.pathsep.join([str(ROOT), out.get("PYTHONPATH", "")])
    return out


def add_settings(project: Path, text: str) -> None:
    """Append TOML ``text`` to the project's ``gridgov.toml``."""
    toml = project / "gridgov.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + "\n" + text + "\n", encoding="utf-8")


def draw(project: Path, workdir: Path, **extra_env: str) -> None:
    """Run the grids stage on ``project`` in a new interpreter; fail with its stderr."""
    script = workdir / "draw_grids.py"
    script.write_text(DRAW, encoding="utf-8")
    res = subprocess.run([sys.executable, str(script), str(project)], cwd=ROOT,
                         env=env(**extra_env), capture_output=True, text=True, timeout=900,
                         check=False)
    assert res.returncode == 0, res.stderr[-3000:]


def members(project: Path) -> pd.Series:
    """``building_id -> grid_id`` of the project's current plan."""
    con = connect(project / "gridgov.duckdb", read_only=True)
    try:
        m = read_table(con, "SELECT building_id, grid_id FROM grid_members ORDER BY building_id")
    finally:
        con.close()
    return pd.Series(m["grid_id"].to_numpy(), index=m["building_id"].to_numpy())
