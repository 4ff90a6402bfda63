"""The server: routing and handshakes, streams and fan-out, ingest, HTTP endpoints, the
web pages, background loops, the scheduler and its tasks (docs/architecture.md)."""
