"""Starting or joining a cluster: a scheduler file that is not one is named, not asserted."""

from __future__ import annotations

import pytest

import auroradask
from auroradask_cli.main import main


@pytest.mark.parametrize("content", ["{}", "not json", '{"address": ""}', "[1, 2]"])
def test_a_malformed_scheduler_file_is_named(tmp_path, content, capsys):
    path = tmp_path / "scheduler.json"
    path.write_text(content)
    with pytest.raises(auroradask.ArgumentError, match="^scheduler: .*scheduler.json"):
        auroradask.start_client(str(path))
    assert main(["classify", "--scheduler", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "scheduler.json" in err[0] and "AssertionError" not in err[0]


def test_workers_below_one_are_refused():
    with pytest.raises(auroradask.ArgumentError, match="^workers"):
        auroradask.start_client(workers=0)
