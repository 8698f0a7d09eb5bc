"""``python -m convbench``: the ``convbench`` command where no console script is installed."""

from convbench.cli import main

if __name__ == "__main__":
    main()
