"""One colour per class: the palette every figure and the dashboard page take their colours
from (the page's JavaScript copy of it is tested in tests/distributed/test_dashboard.py)."""

from __future__ import annotations

import json

from auroradask import _palette
from auroradask._palette import CYCLE, NAMED, class_color, class_colors, palette_json, rgb


def test_the_models_classes_keep_the_colours_of_the_figures():
    classes = ["bad_viewing", "no_aurora", "other_aurora", "pulsating"]
    assert class_colors(classes) == ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    # a class's colour does not depend on the model's order or on the other classes
    assert class_colors(classes[::-1]) == class_colors(classes)[::-1]
    assert class_colors(["pulsating"]) == ["#d62728"]


def test_other_names_take_a_colour_of_their_own_name():
    names = ["arc", "diffuse", "patchy", "pulsating", "clouds", "moon"]
    colors = class_colors(names)
    assert len(set(colors)) == len(names)  # distinct within a list
    assert all(c in CYCLE for n, c in zip(names, colors, strict=True) if n not in NAMED)
    # these names hash to different colours, so each has its colour with or without the
    # others: the dashboard, which sees only the classes labelled so far, agrees
    for name, color in zip(names, colors, strict=True):
        assert class_color(name) == color
    assert class_color("arc") == CYCLE[_palette._fnv1a("arc") % len(CYCLE)]
    # two names of one list that hash alike are told apart, the later one moved on
    twin = next(f"x{k}" for k in range(1000) if _palette._fnv1a(f"x{k}") % len(CYCLE) == 9)
    assert _palette._fnv1a("arc") % len(CYCLE) == 9
    assert class_colors(["arc", twin]) == [CYCLE[9], CYCLE[10]]


def test_fnv1a_is_the_published_function():
    # reference values of 32-bit FNV-1a
    assert _palette._fnv1a("") == 0x811C9DC5
    assert _palette._fnv1a("a") == 0xE40C292C
    assert _palette._fnv1a("foobar") == 0xBF9CF968


def test_many_classes_share_colours_only_when_the_palette_is_used_up():
    names = [f"class{k}" for k in range(len(CYCLE) + 3)]
    colors = class_colors(names)
    assert len(set(colors[: len(CYCLE)])) == len(CYCLE)
    assert set(colors) == set(CYCLE)


def test_the_page_gets_the_same_palette():
    page = json.loads(palette_json())
    assert page["named"] == NAMED and page["cycle"] == list(CYCLE)
    assert rgb("#ff7f0e") == (1.0, 127 / 255, 14 / 255)
