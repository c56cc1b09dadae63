"""The names and numbers every stage shares: frame geometry, time slots, statuses, variables.

One place owns them so that the reader, the classifier, the store and the analysis agree by
construction: a THEMIS frame is 256×256 16-bit counts, one every 3 s, so a UT day has 28,800
slots; ``frame_status`` says why a slot holds no frame; ``-1`` means "not classified" in
``label`` and "never written" in a store's ``frame_status``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

#: Rows and columns of a THEMIS ASI frame, and the bytes of its 16-bit pixels.
FRAME_SHAPE = (256, 256)
FRAME_BYTES = FRAME_SHAPE[0] * FRAME_SHAPE[1] * 2

#: One frame every 3 s: the nominal slot of a frame is its header time floored to 3 s.
SLOT_SECONDS = 3
SLOT = np.timedelta64(SLOT_SECONDS, "s").astype("timedelta64[ns]")
MINUTES_PER_DAY = 1440
SLOTS_PER_MINUTE = 60 // SLOT_SECONDS
DAY_SLOTS = MINUTES_PER_DAY * SLOTS_PER_MINUTE  # 28,800

#: Minute files per frames chunk by default: 200 frames, 26 MB of raw counts.
DEFAULT_CHUNK_MINUTES = 10

#: Values of ``frame_status`` (CF ``flag_values`` / ``flag_meanings``). ``file_unreachable``
#: is a transport failure (HTTP error, connection lost): unlike the others it is not a fact
#: about the archive, so a store never marks such a slot complete and the next run retries it.
OK, NO_FILE, FILE_UNREADABLE, FRAME_MISSING, FILE_UNREACHABLE = 0, 1, 2, 3, 4
FRAME_STATUS_MEANINGS = ("ok", "no_file", "file_unreadable", "frame_missing", "file_unreachable")
#: ``frame_status`` in a store where nothing was written yet (the store's fill value).
NOT_WRITTEN = -1
#: ``label`` where no class was given (no valid frame in the slot).
NOT_CLASSIFIED = -1

#: The variables of a results dataset, as :func:`auroradask.classify` makes them.
RESULT_VARIABLES = ("label", "confidence", "probability", "timestamp", "frame_status")

#: A site code: lower-case letters and digits (``gill``, ``fsmi``). It becomes part of paths
#: and file headers, so nothing else is accepted.
SITE_CODE = re.compile(r"[a-z0-9]+")


def frame_status_attrs() -> dict[str, Any]:
    """CF flag attributes of ``frame_status``."""
    return {
        "long_name": "frame status",
        "flag_values": np.arange(len(FRAME_STATUS_MEANINGS), dtype=np.int8),
        "flag_meanings": " ".join(FRAME_STATUS_MEANINGS),
    }


def label_attrs(classes: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """CF flag attributes of ``label``: -1 not classified, values 0..n-1 the classes.

    The class names are also the ``class`` coordinate, in the same order.
    """
    names = " ".join(str(c).replace(" ", "_") for c in classes)
    return {
        "long_name": "class index (-1: not classified)",
        "flag_values": np.arange(NOT_CLASSIFIED, len(classes), dtype=np.int8),
        "flag_meanings": f"not_classified {names}",
        "comment": "-1: not classified (no valid frame in the slot)",
    }


#: Frames per onnxruntime call at most, and the activation memory a call may take when the
#: batch size is chosen from the model (``batch_size="auto"``): with a worker per core, a
#: ResNet-50-sized model (about 44 MB of node outputs per 224x224 frame) gets 5 frames a
#: call, and a site-night stays within 1.5 GB over all processes.
MAX_BATCH_SIZE = 32
BATCH_ACTIVATION_BYTES = 256 * 2**20
