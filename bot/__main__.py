"""`python -m bot`: the chanwatch command line (the same as the `chanwatch` console script)."""

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main())
