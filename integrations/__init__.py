"""The framework integrations, one module each.

Each module ``autologagent.integrations.<name>`` has ``SUPPORTED`` (its version
range, as data), ``patch_module(module)`` (called for its framework's package
and every module under it, right after the module executed), ``unpatch()`` and
``autolog(**options)``. They never import each other; what they share lives in
the core. This package is imported at start-up, so it holds data only.
"""

# integration name -> the top-level package(s) it watches
PACKAGES: dict[str, str | tuple[str, ...]] = {
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "torch": "torch",
    "lightning": ("lightning", "pytorch_lightning"),
}
