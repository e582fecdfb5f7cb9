"""Reading public channels without an account: the web preview (`t.me/s/<name>`, `?embed=1`).

`http` fetches the pages politely (one connection, an overall rate, 429 honoured); `preview` turns
them into plain dataclasses (pure, no I/O); the reader that feeds ingest lives beside them. See
docs/architecture.md, "Reading the web preview".
"""
