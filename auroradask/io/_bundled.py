"""The bundled sample archive: real THEMIS frames shipped inside the package, so every
command and test has data to run on without a network."""

from __future__ import annotations

from pathlib import Path

_DATA = Path(__file__).resolve().parent.parent / "data"


def sample_archive() -> str:
    """Path of the bundled sample stream0 tree: Gillam, 2014-03-10 06:00-06:06 UT, 120 frames.

    Real THEMIS data; see ``auroradask/data/sample/README.md`` for the attribution.
    """
    return str(_DATA / "sample" / "stream0")
