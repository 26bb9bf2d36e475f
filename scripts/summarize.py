#!/usr/bin/env python
"""Summarise a Hydra multirun.

The same command as `radscreen-summarize` (options: --help; code: radscreen/cli/summarize.py)."""

from radscreen.cli.summarize import main, run  # noqa: F401  (main(argv): the tests call it)

if __name__ == "__main__":
    run()
