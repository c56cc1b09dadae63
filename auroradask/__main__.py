"""``python -m auroradask``: the same as the ``auroradask`` command."""

import sys

from auroradask_cli.main import main

sys.exit(main())
