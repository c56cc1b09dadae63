"""The checks of a request for frames, shared by every reader of frames (:mod:`._stream0`,
:mod:`._cdf`) and by the model comparison: the site codes, the UT interval and the chunk length,
each refused with an :class:`~auroradask.errors.ArgumentError` that names the argument.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._schema import MINUTES_PER_DAY, SITE_CODE
from ..errors import ArgumentError


def check_sites(sites: str | Sequence[str]) -> list[str]:
    """Validate and normalise the ``sites`` argument to a list of lower-case codes."""
    if isinstance(sites, str):
        sites = [sites]
    try:
        codes = [str(s).strip().lower() for s in sites]
    except TypeError:
        raise ArgumentError(
            f"sites: expected a site code or a list of them, got {sites!r}"
        ) from None
    if not codes:
        raise ArgumentError("sites: the list of sites is empty; name at least one, e.g. 'gill'")
    bad = [c for c in codes if not SITE_CODE.fullmatch(c)]
    if bad:
        raise ArgumentError(f"sites: {bad!r} are not site codes (letters and digits, e.g. 'gill')")
    if len(set(codes)) != len(codes):
        raise ArgumentError(f"sites: {codes!r} names a site twice")
    return codes


_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def check_interval(start: Any, end: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Parse ``start`` and ``end`` as naive UT timestamps and check ``start < end``.

    A date alone (``"2014-03-11"``) as ``end`` includes that whole day, as pandas' and
    xarray's date slicing do; any other ``end`` is exclusive. The command line's ``--end``
    passes its text here, so both mean the same.
    """
    parsed = []
    for name, value in (("start", start), ("end", end)):
        try:
            ts = pd.Timestamp(value)
        except (ValueError, TypeError) as error:
            raise ArgumentError(f"{name}: cannot read {value!r} as a UT time ({error})") from None
        if ts is pd.NaT:
            raise ArgumentError(f"{name}: {value!r} is not a time")
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        parsed.append(ts.as_unit("ns"))
    if isinstance(end, str) and _DATE_ONLY.fullmatch(end.strip()):
        parsed[1] += pd.Timedelta(days=1)
    if parsed[1] <= parsed[0]:
        raise ArgumentError(f"end: {parsed[1]} is not after start {parsed[0]}")
    return parsed[0], parsed[1]


def check_chunk_minutes(chunk_minutes: Any) -> int:
    """A whole number of minutes that divides a UT day, so chunk edges line up every day."""
    if (
        isinstance(chunk_minutes, bool)
        or not isinstance(chunk_minutes, int | np.integer)
        or chunk_minutes < 1
    ):
        raise ArgumentError(
            f"chunk_minutes: expected a whole number of minutes >= 1, got {chunk_minutes!r}"
        )
    if MINUTES_PER_DAY % chunk_minutes:
        raise ArgumentError(
            f"chunk_minutes: {chunk_minutes} minutes does not divide a day (1440 minutes)"
        )
    return int(chunk_minutes)
