"""Debian's Chromium and the flags it runs with here: the browser tests and bench_web.py.

``.ci/run`` installs ``/usr/bin/chromium`` (never ``playwright install``). The
flags keep it from reaching for the network, which is closed here and would
make it hang.
"""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
