"""Train a model: python train.py experiment=NAME [key=value ...] (-m for sweeps).

The same command as `radscreen-train` (code: radscreen/cli/train.py)."""

from radscreen.cli.train import run

if __name__ == "__main__":
    run()
