"""`chanwatch serve`: the archive in a browser, as Datasette with a chanwatch plugin.

    app.py       the Datasette over the archive, read-only, with the plugin, metadata and templates
    plugin.py    the hooks: routes, permissions, the access middleware, SQL functions, cell links
    pages.py     chanwatch's pages: home, search, post, channel, reports, media (storage functions only)
    access.py    the token, the closed introspection paths, withheld and hidden columns
    metadata.py  titles, facets, labels, canned queries, the tables not served
    templates/   Jinja templates (autoescaped) on Datasette's base page
"""
