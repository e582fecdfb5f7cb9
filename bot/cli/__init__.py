"""The `chanwatch` command line: parsing and printing only; the work is in `storage` and `bot`.

`bot.cli.app` builds the parser from the command modules (`exchange`, `search`, `stats`,
`daemon`, `channels`, `rules`, `backfill`, `demo`); `bot.cli.common` holds what they share.
"""

from bot.cli.app import main

__all__ = ["main"]
