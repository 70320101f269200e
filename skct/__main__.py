"""``python -m skct ...``: the skct command line (see :mod:`skct.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
