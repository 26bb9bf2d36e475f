#!/usr/bin/env python
"""Compare the average maps of several models.

The same command as `radscreen-cam-compare` (options: --help; code: radscreen/cli/cam_compare.py)."""

from radscreen.cli.cam_compare import main, run  # noqa: F401  (main(argv): the tests call it)

if __name__ == "__main__":
    run()
