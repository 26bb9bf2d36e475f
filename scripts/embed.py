#!/usr/bin/env python
"""Embeddings of every image of a manifest.

The same command as `radscreen-embed` (options: --help; code: radscreen/cli/embed.py)."""

from radscreen.cli.embed import run

if __name__ == "__main__":
    run()
