"""Data from a store, made safe for the pages auroradask writes (quicklook index, labelling).

A results store is data from elsewhere: its site and class names and its provenance reach
pages as text. Names placed in HTML are escaped with :func:`html.escape`; values placed in a
``<script>`` are JSON from :func:`script_json`, in which no ``<``, ``>`` or ``&`` is left, so
that a name such as ``</script><img onerror=...>`` cannot close the script and stays data.
"""

from __future__ import annotations

import json
from typing import Any


def script_json(value: Any) -> str:
    """JSON safe inside ``<script>`` (either as code or as ``type="application/json"``):
    ``<``, ``>`` and ``&`` written as ``\\u003c``, ``\\u003e``, ``\\u0026``, and every
    non-ASCII character (the line separators U+2028 and U+2029 among them) escaped too.
    ``JSON.parse`` and JavaScript read back the same strings."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


__all__ = ["script_json"]
