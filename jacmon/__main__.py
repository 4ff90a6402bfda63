"""Allow ``python -m jacmon``."""

from jacmon.cli import main

main()
