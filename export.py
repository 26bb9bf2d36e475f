"""Export a checkpoint: python export.py ckpt_path=CKPT format=onnx|torchscript out=FILE.

The same command as `radscreen-export` (code: radscreen/cli/export.py)."""

from radscreen.cli.export import run

if __name__ == "__main__":
    run()
