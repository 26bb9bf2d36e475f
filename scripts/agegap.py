#!/usr/bin/env python
"""Age-gap analysis against clinical variables.

The same command as `radscreen-agegap` (options: --help; code: radscreen/cli/agegap.py)."""

from radscreen.cli.agegap import main, run  # noqa: F401  (main(argv): the tests call it)

if __name__ == "__main__":
    run()
