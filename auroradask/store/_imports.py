"""The files an imported store was made from (``import_files``), merged write by write.

:func:`auroradask.import_text` lists each file it read, with its site, UT day and sha256,
in the results' ``import_files``; the store keeps the list of every import into it. A
store keeps the first import of a site-day (a later write skips slots already written), so
another file for a day the store lists already (a corrected file) would be listed and not
written: it is refused here instead, naming both files. An *empty* file (``"empty": true``:
0 bytes, its writer died) wrote nothing, so the real file of its day is taken later.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import StoreError

#: ``YYYYMMDD_<site>_...``: the day and site of an entry listed before entries had them.
_NAME = re.compile(r"(?:.*[/\\])?(\d{8})_([a-z0-9]+)_[^/\\]*$")


def _site_day(entry: dict[str, Any]) -> tuple[str, str] | None:
    if entry.get("site") and entry.get("day"):
        return str(entry["site"]), str(entry["day"])
    match = _NAME.match(str(entry.get("file", "")))
    return (match[2], match[1]) if match else None


def merged_import_files(have: list, more: list, url: str) -> list | None:
    """The store's ``import_files`` with ``more`` added, or None if none of them is new
    (the same bytes for the same site-day: an import run again).

    Raises
    ------
    StoreError
        If a file of ``more`` is another file (other bytes) for a site-day whose file the
        store lists already, and neither is empty.
    """
    have = [e for e in have if isinstance(e, dict)]
    listed = {}
    for entry in have:
        key = _site_day(entry)
        if key is not None and not entry.get("empty"):
            listed.setdefault(key, entry)
    known = {(e.get("sha256"), _site_day(e)) for e in have}
    added = []
    for entry in (e for e in more if isinstance(e, dict)):
        key = _site_day(entry)
        if (entry.get("sha256"), key) in known:
            continue
        old = listed.get(key) if key is not None else None
        if old is not None and not entry.get("empty"):
            site, day = key
            raise StoreError(
                f"store: {url} holds site {site} on {day} from {old.get('file')} (sha256 "
                f"{str(old.get('sha256'))[:12]}); {entry.get('file')} is another file for that "
                f"day (sha256 {str(entry.get('sha256'))[:12]}), which would be listed but "
                "not written: import the corrected files into a new store"
            )
        known.add((entry.get("sha256"), key))
        added.append(entry)
    return have + added if added else None


__all__ = ["merged_import_files"]
