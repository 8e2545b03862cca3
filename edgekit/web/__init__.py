"""``edgekit web``: the status page, a companion process beside the daemon.

The daemon keeps no network socket; this process reads what it writes (the event log, clips in
the state directory) and its live feed (Unix datagrams, :mod:`edgekit.daemon.live`), and
serves a page and a JSON API (:mod:`.server`). Writes (reviews) go to ``reviews.jsonl`` beside
the event log, never into it. The daemon never imports this package (import-linter checks it).
"""
