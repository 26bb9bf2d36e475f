#!/usr/bin/env python
"""Probe embeddings for attributes.

The same command as `radscreen-probe` (options: --help; code: radscreen/cli/probe.py)."""

from radscreen.cli.probe import run

if __name__ == "__main__":
    run()
