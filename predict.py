"""Predict new images: python predict.py ckpt_path=CKPT input=PATH out=predictions.csv.

The same command as `radscreen-predict` (code: radscreen/cli/predict.py)."""

from radscreen.cli.predict import run

if __name__ == "__main__":
    run()
