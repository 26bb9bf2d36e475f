#!/usr/bin/env python
"""Write patient-level split (and fold) columns into a manifest.

The same command as `radscreen-split-manifest` (options: --help; code: radscreen/cli/split_manifest.py)."""

from radscreen.cli.split_manifest import main, run  # noqa: F401  (main(argv): the tests call it)

if __name__ == "__main__":
    run()
