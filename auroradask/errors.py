"""The exceptions auroradask raises on purpose: one family, so that callers can tell them apart.

Everything here derives from :class:`AuroradaskError`. The command line turns
:class:`ArgumentError`, :class:`ModelError` and :class:`StoreError` into exit code 2 (the
request does not fit), except :class:`StoreLockedError` (another writer is running: exit 1,
try again later); any other :class:`AuroradaskError` gives exit code 1 with a one-line
message, and every other exception (a bug) shows its traceback.
"""

from __future__ import annotations


class AuroradaskError(Exception):
    """Base of every error auroradask raises on purpose."""


class ArgumentError(AuroradaskError, ValueError):
    """An argument is malformed or names something that does not exist; the message names it."""


class SourceNotFoundError(ArgumentError, FileNotFoundError):
    """A path or URL given as an argument (archive, model, skymap, store) does not exist."""


class InputDataError(AuroradaskError):
    """Input data as a whole cannot be used (one damaged file is a frame status, not this)."""


class ModelError(AuroradaskError, ValueError):
    """A model file, its card and the requested use of it do not fit, or its outputs are wrong."""


class StoreError(AuroradaskError, ValueError):
    """A results store cannot take these results, or is not a results store."""


class StoreLockedError(StoreError):
    """Another writer holds the store's lock."""


class ClusterError(AuroradaskError):
    """The cluster cannot do the work: every worker is gone and none came back in time, or a
    worker cannot see what it must read (the archive)."""
