"""Hostile input through ingest: column names and values never become SQL, odd files and odd
values end as rejects or one-line messages (never a traceback), rejects keep the raw text."""
from __future__ import annotations

import json
from pathlib import Path

from pipelines.db import connect, quote_ident, quote_literal
from pipelines.run import db_path, run_project


def _con(project: Path):
    return connect(db_path(project), read_only=True)


def _columns(con, table: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {quote_ident(table)}").fetchall()]


def test_quote_helpers_double_their_quotes():
    assert quote_ident('a"b') == '"a""b"'
    assert quote_literal("it's") == "'it''s'"
    con = connect()
    name = 'x"; DROP TABLE t; --'
    con.execute(f"CREATE TABLE t AS SELECT 1 AS {quote_ident(name)}")
    assert con.execute("SELECT * FROM t").df().columns.tolist() == [name]


def test_hostile_column_names_are_data_not_sql(tiny_project, tmp_path_factory):
    target = tmp_path_factory.mktemp("out") / "pwned.csv"
    evil = f"a\"; COPY (SELECT 1) TO '{target.as_posix()}'; --"
    # GeoJSON property keys (communities and barriers)
    gj = json.loads((tiny_project / "communities.geojson").read_text(encoding="utf-8"))
    for k, f in enumerate(gj["features"]):
        f["properties"][evil] = f"v{k}"
        f["properties"]['"'] = "quote"
        f["properties"]["Note"] = "upper"
        f["properties"]["note"] = "lower"
    (tiny_project / "communities.geojson").write_text(json.dumps(gj, ensure_ascii=False), encoding="utf-8")
    # CSV headers (buildings): a quote, the injection, an empty header and a pipeline-internal name
    lines = (tiny_project / "buildings.csv").read_text(encoding="utf-8").splitlines()
    csv_evil = evil.replace('"', '""')
    lines[0] += f',"{csv_evil}","""",,__row'
    lines[1:] = [ln + ",x,y,z,w" for ln in lines[1:]]
    (tiny_project / "buildings.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # values that look like SQL
    inc = (tiny_project / "incidents.csv").read_text(encoding="utf-8").splitlines()
    inc[1] = inc[1].replace("dispute", "x'); DROP TABLE buildings; --", 1)
    (tiny_project / "incidents.csv").write_text("\n".join(inc) + "\n", encoding="utf-8")

    run_project(tiny_project, stages=[])
    assert not target.exists()
    con = _con(tiny_project)
    try:
        assert con.execute("SELECT count(*) FROM communities").fetchone()[0] == 4
        assert con.execute("SELECT count(*) FROM buildings").fetchone()[0] == 40
        cols = _columns(con, "communities")
        assert evil in cols and '"' in cols and "Note" in cols and "note_2" in cols
        got = con.execute(f"SELECT {quote_ident(evil)} FROM communities ORDER BY community_code").fetchall()
        assert [r[0] for r in got] == ["v0", "v1", "v2", "v3"]
        bcols = _columns(con, "buildings")
        assert evil in bcols and '"' in bcols and not any(c.startswith("__") for c in bcols)
        cat = con.execute("SELECT category FROM incidents WHERE incident_id='E000'").fetchone()[0]
        assert cat == "x'); DROP TABLE buildings; --"
    finally:
        con.close()
