"""One grammar for the whole command line, checked by walking the parser, and bad values
refused where they are parsed (exit 2, naming the option and what was typed) before any
cluster starts or any file is read."""

from __future__ import annotations

import argparse

import pytest

from auroradask.cli import options
from auroradask.cli.main import build_parser, main


def _commands(parser: argparse.ArgumentParser, path=()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


COMMANDS = [(" ".join(path), parser) for path, parser in _commands(build_parser()) if path]
LEAVES = [
    (name, parser)
    for name, parser in COMMANDS
    if not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
]


def _visible(parser):
    return [a for a in parser._actions if a.option_strings and a.help is not argparse.SUPPRESS]


def _flag(parser, flag):
    return next((a for a in parser._actions if flag in a.option_strings), None)


def test_the_walk_sees_every_command():
    names = {name for name, _ in LEAVES}
    assert {"classify", "embed", "patches", "events", "quicklook", "model check"} <= names
    assert len(LEAVES) >= 17


@pytest.mark.parametrize(("name", "parser"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_quiet_and_verbose_on_every_command(name, parser):
    assert _flag(parser, "-q") is not None and _flag(parser, "-v") is not None, name


@pytest.mark.parametrize(("name", "parser"), LEAVES, ids=[n for n, _ in LEAVES])
def test_one_spelling_per_meaning(name, parser):
    for action in _visible(parser):
        flags = action.option_strings
        if action.dest == "out":  # every output
            assert flags == ["-o", "--out"], (name, flags)
        assert "--output" not in flags, (name, flags)  # only as a deprecated alias
        if action.dest == "source":  # every frames source
            assert flags == ["--source"], (name, flags)
        if "--site" in flags:  # comma-separated and repeatable everywhere
            assert action.type is options.site_list and isinstance(
                action, argparse._ExtendAction
            ), name
        if {"--start", "--end", "--night"} & set(flags):  # ISO UT only
            assert action.type is options.ut_time, (name, flags)
        if {"--min-duration", "--max-gap"} & set(flags) and name == "events":
            assert action.type is options.duration, (name, flags)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["classify", "--source", "x", "--site", "gill", "--start", "10/03/2014"], "10/03/2014"),
        (["classify", "--start", "2014-03-10", "--end", "March 11"], "March 11"),
        (["events", "s.zarr", "--class", "c", "--min-duration", "5", "-o", "e.csv"], "'5'"),
        (["events", "s.zarr", "--class", "c", "--max-gap=-30s", "-o", "e.csv"], "-30s"),
        (["occurrence", "s.zarr", "--altitude", "-100", "-o", "o.csv"], "-100"),
        (["occurrence", "s.zarr", "--smooth", "-3", "-o", "o.csv"], "-3"),
        (["occurrence", "s.zarr", "--min-confidence", "1.5", "-o", "o.csv"], "1.5"),
        (["occurrence", "s.zarr", "-o", "o.xlsx"], "o.xlsx"),
        (["occurrence", "s.zarr", "-o", "no/such/folder/o.csv"], "does not exist"),
        (["timeline", "s.zarr", "--site", "gill", "--night", "2014-03-09", "-o", "t.gif"], "t.gif"),
        (["classify", "--memory-limit", "lots"], "lots"),
        (["classify", "--keep-dashboard", "-1"], "-1"),
        (["classify", "--performance-report", "no/such/r.html"], "does not exist"),
        (["classify", "--skymap", "no-such-skymap.sav"], "no-such-skymap.sav"),
        (["patches", "-o", "p.csv"], "p.csv"),
        (["movie", "-o", "night.gif"], "night.gif"),
        (["quicklook", "s.zarr", "-o", "q.jpeg"], "q.jpeg"),
    ],
)
def test_bad_values_are_argument_errors_naming_what_was_typed(
    args, named, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err


def test_an_output_that_is_a_file_or_folder_of_the_wrong_kind_is_refused_first(tmp_path, capsys):
    a_file = tmp_path / "results.zarr"
    a_file.write_text("not a store")
    # classify refuses before it starts a cluster: no dashboard line is printed
    assert main(["classify", "--out", str(a_file)]) == 2
    captured = capsys.readouterr()
    assert "is a file, not a folder" in captured.err and "dashboard" not in captured.out
    assert main(["export-text", "s.zarr", "-o", str(a_file)]) == 2
    (tmp_path / "events.csv").mkdir()
    assert main(["events", "s.zarr", "--class", "c", "-o", str(tmp_path / "events.csv")]) == 2
    assert "is a folder, not a file" in capsys.readouterr().err


def test_old_spellings_work_with_a_warning(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parser = build_parser()
    args = parser.parse_args(["occurrence", "s.zarr", "--output", "o.csv"])
    assert args.out == "o.csv"
    assert "--output is deprecated" in capsys.readouterr().err
    args = parser.parse_args(["model", "check", "m.onnx", "--frames", "archive"])
    assert args.source == "archive"
    args = parser.parse_args(["model", "quantize", "m.onnx", "-o", "q.onnx", "--frames", "7"])
    assert args.n_frames == 7
    args = parser.parse_args(["model", "quantize", "m.onnx", "-o", "q.onnx", "--calibration", "a"])
    assert args.source == "a"
    args = parser.parse_args(["embed", "--output", "/Concat_output_0"])
    assert args.tensor == "/Concat_output_0"


def test_a_required_output_given_in_no_spelling_is_an_argument_error(capsys):
    assert main(["occurrence", "s.zarr"]) == 2
    assert "required: -o/--out" in capsys.readouterr().err


def test_quiet_after_a_sub_subcommand(capsys):
    # -q anywhere: after "model check" too (it was refused there)
    assert main(["model", "check", "no-such-model.onnx", "-q"]) != 0
    assert "unrecognized arguments" not in capsys.readouterr().err


def test_sites_comma_separated_in_every_command_that_takes_several():
    parser = build_parser()
    for args in (
        ["embed", "--site", "gill,fsmi"],
        ["patches", "--site", "gill", "--site", "fsmi"],
        [
            "montage",
            "s.zarr",
            "--source",
            "a",
            "--class",
            "c",
            "--site",
            "gill,fsmi",
            "-o",
            "m.png",
        ],
        ["quicklook", "s.zarr", "--site", "gill,fsmi", "-o", "folder"],
    ):
        assert parser.parse_args(args).site == ["gill", "fsmi"], args


def test_a_command_that_draws_one_site_says_so(capsys):
    assert (
        main(["timeline", "s.zarr", "--site", "gill,fsmi", "--night", "2014-03-09", "-o", "t.png"])
        == 2
    )
    assert "give one site, got gill, fsmi" in capsys.readouterr().err


def test_an_unreachable_scheduler_is_one_line(capsys, tmp_path):
    out = str(tmp_path / "r.zarr")
    assert main(["classify", "--scheduler", "tcp://127.0.0.1:9", "--out", out]) == 1
    err = capsys.readouterr().err
    assert "cannot reach 'tcp://127.0.0.1:9'" in err and "Traceback" not in err


def test_an_unresolvable_dashboard_address_is_an_argument_error(capsys, tmp_path):
    out = str(tmp_path / "r.zarr")
    args = ["classify", "--dashboard-address", "no-such-host.invalid:8787", "--out", out]
    assert main([*args, "--workers", "1"]) == 2
    assert "cannot serve the dashboard at 'no-such-host.invalid:8787'" in capsys.readouterr().err


def test_a_failed_start_leaves_no_client_behind(capsys, tmp_path):
    import dask
    import distributed

    assert (
        main(["classify", "--dashboard-address", "no-such-host.invalid:1", "--workers", "1"]) == 2
    )
    with pytest.raises(ValueError):
        distributed.default_client()
    assert dask.config.get("scheduler", None) != "dask.distributed"
