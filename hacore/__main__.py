"""``python -m hacore`` is ``hactl``."""

from hacore.cli import main

main()
