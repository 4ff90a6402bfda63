"""The earlier design's fan-out stack, minimal: Django Channels + daphne + InMemoryChannelLayer."""
