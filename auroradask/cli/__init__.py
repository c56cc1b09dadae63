"""The ``auroradask`` command line, a thin layer over the :mod:`auroradask` Python API."""
