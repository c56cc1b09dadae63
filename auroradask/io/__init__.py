"""Finding and reading frames and label files: the archive listing (any fsspec URL,
``_archive``), THEMIS stream0 minute files (``_stream0``, the checks of a request in
``_requests``), NASA level-1 CDF hour files (``_cdf``), folders of images (``_images``), the
site table (``_sites``), the published classifier's text files (``_textfiles``, imported into
results by ``_textimport``), the bundled sample (``_bundled``), and the bridge that hands one
site's frames and skymap to asilib (``_asilib``).
"""

from ._archive import open_archive
from ._asilib import to_asilib
from ._bundled import sample_archive
from ._cdf import open_themis_cdf
from ._images import open_images
from ._stream0 import open_themis
from ._textfiles import export_text
from ._textimport import import_text

__all__ = [
    "export_text",
    "import_text",
    "open_archive",
    "open_images",
    "open_themis",
    "open_themis_cdf",
    "sample_archive",
    "to_asilib",
]
