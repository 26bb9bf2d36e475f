"""Evaluate a checkpoint: python eval.py ckpt_path=RUN/checkpoints/best.ckpt [data.manifest=...].

The same command as `radscreen-eval` (code: radscreen/cli/eval.py)."""

from radscreen.cli.eval import run

if __name__ == "__main__":
    run()
