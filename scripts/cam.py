#!/usr/bin/env python
"""Class-activation maps of a checkpoint.

The same command as `radscreen-cam` (options: --help; code: radscreen/cli/cam.py)."""

from radscreen.cli.cam import run

if __name__ == "__main__":
    run()
