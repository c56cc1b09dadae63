"""Reading stores back: a missing store is named."""

from __future__ import annotations

import pytest

import auroradask


def test_open_results_names_a_missing_store(tmp_path):
    with pytest.raises(auroradask.SourceNotFoundError, match="^store: no results store"):
        auroradask.open_results(tmp_path / "nothing.zarr")
