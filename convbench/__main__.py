"""``python -m convbench``: the ``convbench`` command where no console script is installed."""

from convbench.cli import main

main()
