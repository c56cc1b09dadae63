"""The colours of auroradask: one colour per class, the same in every figure and on the
dashboard page.

A class keeps its colour whatever the model and wherever it is drawn: the label strips of
timelines and quicklooks, the movie's label box, the events plot, the bars of the occurrence
plot, and the label bars of the dashboard page (``auroradask/data/dashboard.html``, which
takes this palette from :func:`palette_json`, injected by ``auroradask.distributed`` when it
serves the page). So a class is never blue in a figure and green on the dashboard.

- The classes of the THEMIS pulsating-aurora models have fixed colours (:data:`NAMED`, the
  colours they had in the figures before: matplotlib's ``tab10`` in the models' class order).
- Any other class name takes a colour of :data:`CYCLE` from a hash of its name alone
  (FNV-1a, written the same way in the page's JavaScript), not from its place in a list, so
  it gets the same colour on the dashboard (which sees only the classes labelled so far) as
  in a figure (which sees the model's every class). Two names of one list that hash to the
  same colour are told apart by taking the next free colour, in the list's order.
- :data:`UNUSABLE`, :data:`UNWRITTEN` and :data:`NO_FRAME` mark slots that say nothing about
  the sky; no class takes them.

Plain hex strings: no matplotlib import, so the dashboard and ``import auroradask`` stay light.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

#: Colours of the classes of the THEMIS pulsating-aurora models (tab10 blue, orange, green, red).
NAMED: dict[str, str] = {
    "bad_viewing": "#1f77b4",
    "no_aurora": "#ff7f0e",
    "other_aurora": "#2ca02c",
    "pulsating": "#d62728",
}
#: Colours for other class names (tab10 purple, brown, pink, olive, cyan, then tab20's lights).
CYCLE: tuple[str, ...] = (
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#dbdb8d",
    "#9edae5",
)
#: A written slot that is not usable (no frame, low confidence, excluded class).
UNUSABLE = "#9e9e9e"
#: A slot never written into the store.
UNWRITTEN = "#ffffff"
#: A keogram column without a frame.
NO_FRAME = "#f3e6d0"
#: Cells and bins without usable data in rate figures.
NO_DATA = "#dddddd"


def _fnv1a(text: str) -> int:
    """32-bit FNV-1a of the UTF-8 bytes of ``text`` (the page computes the same)."""
    value = 0x811C9DC5
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def class_colors(classes: Sequence[str]) -> list[str]:
    """One ``#rrggbb`` colour per class name, distinct within the list while the palette
    lasts (more classes than :data:`NAMED` and :data:`CYCLE` hold share colours)."""
    colors: list[str] = []
    for name in map(str, classes):
        if name in NAMED:
            colors.append(NAMED[name])
            continue
        start = _fnv1a(name) % len(CYCLE)
        free = [CYCLE[(start + k) % len(CYCLE)] for k in range(len(CYCLE))]
        colors.append(next((c for c in free if c not in colors), free[0]))
    return colors


def class_color(name: str) -> str:
    """The colour of one class name (as it is drawn when no other class shares it)."""
    return class_colors([name])[0]


def rgb(color: str) -> tuple[float, float, float]:
    """``#rrggbb`` as three floats 0..1 (matplotlib's RGB)."""
    value = color.lstrip("#")
    return tuple(int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def palette_json() -> str:
    """The palette for the dashboard page's script: ``{"named", "cycle", "unusable"}``."""
    return json.dumps({"named": NAMED, "cycle": list(CYCLE), "unusable": UNUSABLE})


__all__ = [
    "CYCLE",
    "NAMED",
    "NO_DATA",
    "NO_FRAME",
    "UNUSABLE",
    "UNWRITTEN",
    "class_color",
    "class_colors",
    "palette_json",
    "rgb",
]
