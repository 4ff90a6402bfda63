"""The browser dashboard's files: ``static/`` holds the pages, scripts and styles.

``jacmon serve`` reads every file in ``static/`` once at start and serves it
(:mod:`jacmon.server.web`): ``index.html`` at ``/``, ``learner.html`` at
``/learner`` and each file at ``/static/<name>``. See docs/web.md.
"""
