#!/usr/bin/env python
"""Reports of train.py / eval.py runs.

The same command as `radscreen-report` (options: --help; code: radscreen/cli/report.py)."""

from radscreen.cli.report import main, run  # noqa: F401  (main(argv): the tests call it)

if __name__ == "__main__":
    run()
