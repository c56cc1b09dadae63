"""``auroradask embed``: the bundled sample into an embedding store; the layers listed."""

from __future__ import annotations

import numpy as np

import auroradask
from auroradask.cli.main import main
from tests.support.utils import SAMPLE_END, SAMPLE_START


def test_embed_writes_an_embedding_store(tmp_path, capsys):
    store = tmp_path / "emb.zarr"
    args = ["embed", "--source", auroradask.sample_archive(), "--site", "gill"]
    args += ["--start", SAMPLE_START, "--end", SAMPLE_END, "--tensor", "/Concat_output_0"]
    args += ["--dtype", "float32", "-o", str(store), "--workers", "1"]
    args += ["--dashboard-address", ":0"]
    assert main(args) == 0
    assert "96 features, float32" in capsys.readouterr().out
    opened = auroradask.open_results(store)
    slots = opened.sel(time=slice(SAMPLE_START, "2014-03-10T06:05:59")).compute()
    ok = slots["frame_status"].values[0] == 0
    assert ok.sum() == 120
    assert np.isfinite(slots["embedding"].values[0][ok]).all()
    assert slots["embedding"].dtype == np.float32
    assert slots["embedding"].attrs["layer"] == "/Concat_output_0"


def test_list_layers_and_bad_requests(capsys):
    assert main(["embed", "--list-layers"]) == 0
    out = capsys.readouterr().out
    assert "/Concat_output_0" in out and "Relu" in out
    assert main(["embed", "--source", "x", "--site", "gill", "--start", "2014-03-10"]) == 2
    assert "--tensor -o/--out required" in capsys.readouterr().err
    args = ["embed", "--source", auroradask.sample_archive(), "--site", "gill", "--start"]
    args += [SAMPLE_START, "--end", SAMPLE_END, "--tensor", "/nope", "-o", "x.zarr"]
    assert main(args) == 2
    assert "embedding_layers" in capsys.readouterr().err


def test_a_fitted_head_runs_through_auroradask_classify(tmp_path, capsys):
    """Real frames of two sites (the sample and a copy), two made-up classes by minute."""
    import pandas as pd

    from tests.support.utils import copy_as

    embedded = []
    truth = []
    for site, root in (("gill", auroradask.sample_archive()), ("zz9", copy_as(tmp_path, "zz9"))):
        frames = auroradask.open_themis(root, site, SAMPLE_START, SAMPLE_END)
        result = auroradask.embed(frames, auroradask.demo_model(), output="/Concat_output_0")
        auroradask.to_zarr(result, tmp_path / "emb.zarr")
        times = frames["time"].values
        minute = (times - times[0]) // np.timedelta64(60, "s")
        truth.append(
            pd.DataFrame({"site": site, "time": times, "label": np.where(minute < 3, "a", "b")})
        )
        embedded.append(result)
    fit = auroradask.fit_head(tmp_path / "emb.zarr", pd.concat(truth), path=tmp_path / "h.onnx")
    assert fit.classes == ["a", "b"] and fit.nights == 2
    args = ["classify", "--source", auroradask.sample_archive(), "--site", "gill"]
    args += ["--start", SAMPLE_START, "--end", SAMPLE_END, "--model", str(tmp_path / "h.onnx")]
    args += ["--out", str(tmp_path / "head.zarr"), "--workers", "1"]
    args += ["--dashboard-address", ":0"]
    assert main(args) == 0
    assert "model h.onnx" in capsys.readouterr().out
    results = auroradask.open_results(tmp_path / "head.zarr")
    assert results["class"].values.tolist() == ["a", "b"]
    labels = results["label"].sel(time=slice(SAMPLE_START, "2014-03-10T06:05:59")).values[0]
    x = fit.frames[fit.frames["site"] == "gill"]
    from auroradask.learn._heads import gather

    expected = fit.estimator.predict(gather(auroradask.open_results(tmp_path / "emb.zarr"), x))
    assert (labels == expected).mean() > 0.95  # float16 embeddings vs the float32 graph


def test_embed_runs_on_the_sample_with_no_data_options(tmp_path, capsys):
    """As classify: no --source, --site, --start, --end is the bundled sample."""
    store = tmp_path / "emb.zarr"
    args = ["embed", "--tensor", "/Concat_output_0", "-o", str(store), "--workers", "1"]
    assert main([*args, "--dashboard-address", ":0"]) == 0
    assert "96 features, float16" in capsys.readouterr().out
    written = auroradask.open_results(store)["frame_status"].values[0]
    assert (written == 0).sum() == 120
