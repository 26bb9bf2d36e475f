#!/usr/bin/env python
"""Build a manifest from a folder of DICOM files, with a rejects report.

The same command as `radscreen-build-manifest` (options: --help; code: radscreen/cli/build_manifest.py)."""

from radscreen.cli.build_manifest import main, run  # noqa: F401  (main(argv): the tests call it)

if __name__ == "__main__":
    run()
