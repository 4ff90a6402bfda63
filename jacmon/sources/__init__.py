"""Where events come from: files, an LRS, and the one pump that feeds them to a store.

- :mod:`~jacmon.sources.xapi`: xAPI 1.0.3 statement -> jacmon event mapping (no I/O);
- :mod:`~jacmon.sources.files`: reading JSON lines or xAPI files into records, checked locally;
- :mod:`~jacmon.sources.lrs_client`: reading ``GET /statements`` pages from an LRS;
- :mod:`~jacmon.sources.lrs`: the LRS tailer with its watermark (``jacmon ingest --lrs``,
  ``jacmon serve``'s ``[lrs]``);
- :mod:`~jacmon.sources.pump`: the one loop that sends a source's batches to a sink,
  tallies the acks and backs off while either side is away;
- :mod:`~jacmon.sources.remote`: the server's ``/ws/ingest`` as a sink that reconnects.

No import of the server, the terminal UI or the CLI (import-linter checks it): the
sink is anything with ``send_batch``/``get_cursor``, such as
:class:`jacmon.client.ingest.IngestClient` or the server's in-process twin.
"""
