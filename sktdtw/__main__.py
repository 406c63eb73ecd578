"""``python -m sktdtw``: the command line of :mod:`sktdtw._cli`."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
