"""``python -m hwbench.cli``: the ``hwbench`` command."""

import sys

from hwbench.cli import main

sys.exit(main())
