"""Patches of successive frames linked into tracks, and each track summarised.

Works on the patch table only (tens of rows a frame, small next to the frames), so it runs
after detection over a site's whole series: tracks that cross chunk boundaries come out
whole. :func:`link_patches` gives the track ids; :func:`summarize_tracks` a row per track
(lifetime, drift velocity on the sphere, brightness).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._schema import SLOT_SECONDS
from ..errors import ArgumentError
from ..skymaps._skymap import EARTH_RADIUS_KM


def link_patches(
    table: pd.DataFrame,
    *,
    max_distance: float = 6.0,
    max_gap: int = 3,
    slot_seconds: float = SLOT_SECONDS,
) -> pd.Series:
    """Track ids for a patch table: patches of nearby frames linked by nearest centroid.

    Our own linker rather than trackpy: a frame-to-frame optimal assignment (Hungarian,
    ``scipy.optimize.linear_sum_assignment``, already a dependency) of patch centroids to
    the last position of open tracks, in pixels, gated by ``max_distance`` pixels per frame
    step and allowing ``max_gap`` missing frames (pulsating patches switch off). trackpy's
    linker does the same but adds a dependency and its own frame model; here the table is
    small (tens of rows per frame) and the gap/chunk rules are ours to state.

    The linker runs per site over the whole time series (tables are small next to frames),
    so tracks that cross chunk boundaries come out whole: there is no seam to stitch.

    Returns
    -------
    pandas.Series
        ``int64`` track id per row of ``table`` (aligned on its index), unique across sites.
    """
    from scipy.optimize import linear_sum_assignment

    if max_gap < 0 or max_distance <= 0:
        raise ArgumentError("max_gap: must be >= 0 and max_distance > 0")
    track = pd.Series(-1, index=table.index, dtype="int64")
    next_id = 0
    for _site, group in table.groupby("site", sort=True):
        steps = (
            ((group["time"] - group["time"].min()) / pd.Timedelta(seconds=slot_seconds))
            .round()
            .astype(np.int64)
            .to_numpy()
        )
        yx = group[["row", "col"]].to_numpy()
        index = group.index.to_numpy()
        order = np.argsort(steps, kind="stable")
        # open tracks: id, last step, last position
        open_ids: list[int] = []
        open_step: list[int] = []
        open_pos: list[np.ndarray] = []
        boundaries = np.flatnonzero(np.diff(steps[order])) + 1
        for rows in np.split(order, boundaries):
            if rows.size == 0:
                continue
            step = steps[rows[0]]
            keep = [k for k in range(len(open_ids)) if step - open_step[k] <= max_gap + 1]
            open_ids = [open_ids[k] for k in keep]
            open_step = [open_step[k] for k in keep]
            open_pos = [open_pos[k] for k in keep]
            assigned = np.full(rows.size, -1)
            if open_ids:
                last = np.array(open_pos)
                gaps = step - np.array(open_step)
                distance = np.linalg.norm(yx[rows][:, None, :] - last[None, :, :], axis=2)
                allowed = distance <= max_distance * gaps[None, :]
                cost = np.where(allowed, distance, 1e9)
                r, c = linear_sum_assignment(cost)
                ok = allowed[r, c]
                assigned[r[ok]] = c[ok]
            for j, row in enumerate(rows):
                if assigned[j] >= 0:
                    k = assigned[j]
                    track[index[row]] = open_ids[k]
                    open_step[k] = step
                    open_pos[k] = yx[row]
                else:
                    track[index[row]] = next_id
                    open_ids.append(next_id)
                    open_step.append(step)
                    open_pos.append(yx[row])
                    next_id += 1
    return track


def summarize_tracks(
    table: pd.DataFrame, *, altitude_km: float = 110.0, min_frames: int = 1
) -> pd.DataFrame:
    """One row per track: site, start, end, lifetime, frames, drift velocity, brightness.

    The drift velocity is the least-squares slope of the centroid's position against time,
    in a local east/north frame (km, on the sphere at ``altitude_km``) about the track's
    mean position: ``v_east``, ``v_north`` and ``speed`` in m/s (NaN without geographic
    positions or with one frame); ``v_row``/``v_col`` in pixels per second always. The
    brightness series of a track is its rows in the patch table (``table[table.track == id]``).
    Vectorised over tracks (group sums), so a night of dense tracks costs little.
    """
    columns = [
        "track", "site", "start", "end", "lifetime_s", "frames", "v_east", "v_north", "speed",
        "v_row", "v_col", "mean_area_px", "mean_area_km2", "mean_excess", "peak_excess",
        "latitude", "longitude",
    ]  # fmt: skip
    if len(table) == 0:
        return pd.DataFrame(columns=columns)
    radius = EARTH_RADIUS_KM + altitude_km
    track = table["track"].to_numpy()
    groups = table.groupby("track", sort=True)
    seconds = (table["time"] - table["time"].min()).dt.total_seconds()
    t = (seconds - seconds.groupby(track).transform("mean")).to_numpy()
    lat = table["latitude"].astype(float)
    lon = np.radians(table["longitude"].astype(float))
    lat0 = lat.groupby(track).transform("mean")
    lon0 = np.arctan2(
        np.sin(lon).groupby(track).transform("mean"), np.cos(lon).groupby(track).transform("mean")
    )
    dlon = (lon - lon0 + np.pi) % (2 * np.pi) - np.pi
    series = {
        "v_row": table["row"].astype(float),
        "v_col": table["col"].astype(float),
        "v_east": 1000.0 * dlon * radius * np.cos(np.radians(lat0)),
        "v_north": 1000.0 * np.radians(lat - lat0) * radius,
    }
    sums = {}
    for name, y in series.items():
        w = np.isfinite(y.to_numpy()).astype(float)
        yy = np.nan_to_num(y.to_numpy())
        frame = (
            pd.DataFrame({"n": w, "t": w * t, "y": w * yy, "tt": w * t * t, "ty": w * t * yy})
            .groupby(track, sort=True)
            .sum()
        )
        denominator = frame["n"] * frame["tt"] - frame["t"] ** 2
        slope = (frame["n"] * frame["ty"] - frame["t"] * frame["y"]) / denominator
        sums[name] = slope.where((frame["n"] >= 2) & (denominator > 1e-9 * frame["n"] ** 2))
    out = groups.agg(
        site=("site", "first"),
        start=("time", "min"),
        end=("time", "max"),
        frames=("time", "size"),
        mean_area_px=("area_px", "mean"),
        mean_area_km2=("area_km2", "mean"),
        mean_excess=("mean_excess", "mean"),
        peak_excess=("peak_excess", "max"),
        latitude=("latitude", "mean"),
    )
    out["longitude"] = np.degrees(lon0.groupby(track).first()).to_numpy()
    out["lifetime_s"] = (out["end"] - out["start"]).dt.total_seconds() + SLOT_SECONDS
    for name, slope in sums.items():
        out[name] = slope.to_numpy()
    out["speed"] = np.hypot(out["v_east"], out["v_north"])
    out = out[out["frames"] >= min_frames].reset_index(names="track")
    out = out.astype({"frames": "int64", "mean_area_px": "float64", "peak_excess": "float64"})
    return out[columns]
