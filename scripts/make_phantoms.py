#!/usr/bin/env python
"""Generate a synthetic CXR cohort from a real chest CT.

The same command as `radscreen-make-phantoms` (options: --help; code: radscreen/cli/make_phantoms.py)."""

from radscreen.cli.make_phantoms import main, run  # noqa: F401  (main(argv): the tests call it)

if __name__ == "__main__":
    run()
