#!/usr/bin/env python
"""Import a public CXR dataset's metadata into the manifest schema.

The same command as `radscreen-import-manifest` (options: --help; code: radscreen/cli/import_manifest.py)."""

from radscreen.cli.import_manifest import main, run  # noqa: F401  (main(argv): the tests call it)

if __name__ == "__main__":
    run()
