"""The command-line tools, one module each; pyproject.toml's [project.scripts] installs them as radscreen-<name>,
and a checkout's train.py, eval.py, predict.py, export.py and scripts/<name>.py are shims that run the same code.

Hydra commands (key=value overrides of the config tree, `--help`, `--cfg job`): train, eval, predict, export, cam,
embed, probe. Argparse tools: build_manifest, build_ct_manifest, import_manifest, split_manifest, report,
summarize, agegap, cam_compare, make_phantoms. Each module's `run()` is its entry point.
"""
