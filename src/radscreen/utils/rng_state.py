"""The global torch / CUDA / NumPy / Python generator states, as plain tensors and lists for a checkpoint.

Lightning does not save them; radscreen's module stores them in every checkpoint and restores them when a
resumed run starts its next epoch, so dropout draws what the uninterrupted run drew. The form loads with
`torch.load(weights_only=True)`.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def capture_rng_states() -> dict[str, Any]:
    """The current global generator states (torch CPU, every CUDA device, NumPy legacy, Python)."""
    kind, keys, position, has_gauss, cached_gauss = np.random.get_state()
    version, python_state, python_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached_gauss)],
        "python": [version, list(python_state), python_gauss],
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    """Set the global generators to states from capture_rng_states (CUDA only where the devices match)."""
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, keys, position, has_gauss, cached_gauss = states["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached_gauss))
    version, python_state, python_gauss = states["python"]
    random.setstate((version, tuple(python_state), python_gauss))
