"""Reading public channels without an account: the web preview (`t.me/s/<name>`, `?embed=1`).

`preview` turns those pages into plain dataclasses (pure, no I/O); the HTTP client and the reader
that feeds ingest live beside it.
"""
