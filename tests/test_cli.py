"""The ``gridgov`` command line: options anywhere, version, app binding, readable summaries."""
from __future__ import annotations

import subprocess
import sys

import pytest

from pipelines import cli


def test_version():
    out = subprocess.run([sys.executable, "-m", "pipelines", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("gridgov ") and out.split()[1][0].isdigit()


@pytest.mark.parametrize("argv, quiet, verbose", [
    (["-q", "run", "X"], True, 0),
    (["run", "X", "-q"], True, 0),
    (["run", "-v", "X"], False, 1),
    (["-v", "demo", "X", "-v"], False, 1),  # the subcommand's count replaces the main one
    (["demo", "X", "-vv"], False, 2),
    (["run", "X"], False, 0),
])
def test_quiet_and_verbose_before_or_after_the_subcommand(argv, quiet, verbose):
    args = cli.build_parser().parse_args(argv)
    assert args.quiet is quiet and args.verbose == verbose and args.dir == "X"


def test_app_listens_on_loopback_by_default(tmp_path, monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd, env=None, **kw: seen.update(cmd=cmd, env=env) or 0)
    assert cli.main(["app", str(tmp_path), "--port", "8765"]) == 0
    cmd = seen["cmd"]
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8765"
    assert cmd[cmd.index("--server.enableWebsocketCompression") + 1] == "true"
    assert cmd[cmd.index("--server.enableStaticServing") + 1] == "true"
    assert cmd[-2:] == ["--project", str(tmp_path.resolve())]
    assert seen["env"]["GRIDGOV_PROJECT"] == str(tmp_path.resolve())
    assert cli.app_script().is_file()
    assert "warning" not in capsys.readouterr().err


def test_app_on_another_interface_warns(tmp_path, monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd, env=None, **kw: seen.update(cmd=cmd) or 0)
    assert cli.main(["app", str(tmp_path), "--host", "0.0.0.0"]) == 0
    assert seen["cmd"][seen["cmd"].index("--server.address") + 1] == "0.0.0.0"
    err = capsys.readouterr().err
    assert "warning" in err and "0.0.0.0" in err and "登录" in err


def test_app_on_a_missing_project_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["app", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "gridgov demo" in err and "不存在" in err


@pytest.mark.parametrize("host, loop", [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                        ("127.0.0.2", True), ("0.0.0.0", False), ("10.1.2.3", False),
                                        ("example.org", False)])
def test_is_loopback(host, loop):
    assert cli.is_loopback(host) is loop


def test_run_summary_is_a_short_table():
    summary = {
        "run_id": "R1", "seconds": 12.5,
        "ingest": {"rejected": 3, "notes": ["incidents.csv 无数据行，已跳过 / has no data rows and was skipped"],
                   "layers": {
            "streets": {"read": 1, "kept": 1, "rejected": 0},
            "buildings": {"read": 2184, "kept": 2181, "rejected": 3},
            "staff": {"read": 2, "kept": 2, "rejected": 0, "pii_columns_dropped": ["姓名", "phone"],
                      "pii_values_masked": 4}}},
        "stages": {
            "grids": {"plan_id": "P0001", "source": "engine", "n_grids": 95, "n_basic": 82,
                      "n_dedicated": 13, "share_within_norm": 1.0, "seconds": 2.3},
            "hotspots": {"units": 95, "hot_units": 8, "cold_units": 0, "incidents_used": 7832,
                         "months": 24, "seconds": 3.2},
            "staffing": {"current_staff": 43, "budget": 47, "required_people": 61,
                         "streets_short": 1, "people_short": 4, "seconds": 0.3},
        },
    }
    text = cli.run_summary(summary)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["图层", "layer"]
    row = next(line for line in lines if line.startswith("buildings"))
    assert row.split()[1:] == ["2,184", "2,181", "3"]
    assert "拒收合计 / rejected in total: 3" in text
    assert "note: incidents.csv" in text
    assert "personal-data columns not stored: staff: 姓名, phone" in text and "staff 4" in text
    assert "P0001 (engine)" in text and "95 = 82 basic + 13 dedicated" in text
    assert "8 hot, 0 cold of 95 units" in text
    assert "43 today, budget 47, workload needs 61" in text
    assert lines[-1].startswith("运行 / run R1 ok in 12.5 s")
    assert "{" not in text  # no JSON dump
    assert len(lines) < 20


def test_brief_without_a_database_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["brief", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "gridgov run" in err


def test_every_subcommand_has_help():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "cmd")
    assert {"demo", "ingest", "run", "app", "alerts", "brief", "map", "export"} <= set(sub.choices)
    for name, p in sub.choices.items():
        assert p.format_help().strip(), name


def test_run_prints_progress_lines_and_one_table(tiny_project, capsys):
    assert cli.main(["run", str(tiny_project)]) == 0
    out, err = capsys.readouterr()
    assert "阶段 / stage: grids" in err and "s] " in err  # plain time-stamped lines off a terminal
    assert out.splitlines()[0].split()[:2] == ["图层", "layer"]
    assert "网格方案 plan" in out and "运行 / run" in out.splitlines()[-1]
    assert "{" not in out


def test_quiet_run_prints_only_the_table(tiny_project, capsys):
    assert cli.main(["run", str(tiny_project), "-q"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "运行 / run" in out


def test_map_kinds_are_the_exporters_and_errors_are_one_line(tmp_path, capsys):
    from pipelines import mapexport

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "cmd").choices["map"]
    kind = next(a for a in sub._actions if a.dest == "kind")
    assert tuple(kind.choices) == tuple(mapexport.KINDS)
    assert cli.main(["map", str(tmp_path), "--kind", "grids"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("错误 / error:")
