"""jacmon's Python clients of its own protocol (docs/protocol.md), with no Textual import.

- :mod:`~jacmon.client.ingest`: a producer: batches to ``/ws/ingest``, acks, cursors,
  retries (``jacmon ingest``, ``jacmon sim``, the LRS tailer);
- :mod:`~jacmon.client.streams`: a stream reader: one connection per stream, reconnect
  with backoff, resume by seq (the terminal dashboard's, and any script's).
"""
