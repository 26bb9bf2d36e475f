"""Export a trained checkpoint as a self-describing ONNX or TorchScript graph (what export.py runs).

The graph maps the z-scored image (B, C, H, W) — plus age and sex when the model's fusion reads them — to the
decoded outputs in user units (years, years², probabilities). The preprocessing that produces its input travels
with it: in the ONNX metadata or the TorchScript extra file, and always in `<out>.json` beside the file.

- `graph`: the wrapper around a RadscreenModule (named inputs and outputs) and random example inputs.
- `metadata`: preprocessing, z-scoring rule, tasks, inputs and outputs of an export, as one JSON document.
- `formats`: writing, running and reading ONNX and TorchScript files.
- `command`: export.py's job (checks, export, parity check against torch, atomic outputs).
"""
