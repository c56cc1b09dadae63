"""``python -m auroradask``: the same as the ``auroradask`` command."""

import sys

from .cli.main import main

sys.exit(main())
