"""``python -m convbench``: the ``convbench`` command where no console script is installed."""

from convbench.cli import main

# The guard matters: a sweep's worker process (multiprocessing, spawn) imports the main module
# again under another name, and must not run the command a second time.
if __name__ == "__main__":
    main()
