"""Reading public channels from their web preview (t.me/s/<name>): the polite HTTP client
(`http.py`) and the page parser (`preview.py`). See docs/architecture.md, "Reading the web preview"."""
