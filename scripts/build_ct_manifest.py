#!/usr/bin/env python
"""Build a CT manifest from DICOM series folders or NIfTI volumes.

The same command as `radscreen-build-ct-manifest` (options: --help; code: radscreen/cli/build_ct_manifest.py)."""

from radscreen.cli.build_ct_manifest import main, run  # noqa: F401  (main(argv): the tests call it)

if __name__ == "__main__":
    run()
