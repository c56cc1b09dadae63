"""The ``learn`` extra: scikit-learn and skl2onnx, checked once with a message that says what
to install.

:func:`auroradask.fit_head` and :func:`auroradask.cluster` need them; nothing else in the
package does, so ``import auroradask`` (and ``import auroradask.learn``) never imports them.
Fitting happens once, on a workstation; the composed head then runs with onnxruntime alone.
"""

from __future__ import annotations


def require_sklearn() -> None:
    """Raise an :class:`ImportError` naming the ``learn`` extra if scikit-learn or skl2onnx
    is missing."""
    try:
        # deferred: the optional, heavy `learn` extra is imported only to check it is there
        import skl2onnx  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError:
        raise ImportError(
            "fit_head and cluster need scikit-learn and skl2onnx: pip install 'auroradask[learn]'"
        ) from None
