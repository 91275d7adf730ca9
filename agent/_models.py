"""Fitted models as run artifacts, and ``load_model(run_id)`` to get them back.

A model is captured on the training thread as bytes (a pickle of an sklearn
estimator, a booster's own serialisation), because the object may change the
moment ``fit`` returns (a tuning loop refits the same estimator). Everything
else (the file, its digest, the requirements, the metadata) is written by the
background worker. The folder ``<artifacts>/<run_id>/model/`` holds:

- the model file (``model.pkl``, ``model.ubj``, ``model.txt``...);
- ``MLmodel``: the metadata in JSON (which is also YAML, so MLflow reads it): the
  flavor, the loader, the file's SHA-256, the input schema, the versions;
- ``requirements.txt``: the distributions the model's classes come from, pinned.

Loading checks the digest first, so a file changed after it was logged is
refused. Pickles run code when loaded: ``load_model`` is the one place the agent
does that, and only on an explicit call (see the README for why pickle).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickletools
import platform
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from autologagent import _artifacts, _background, _packages

MODEL_DIR = "model"
METADATA_FILE = "MLmodel"
PICKLE_LOADER = "pickle"
# Loaders other than plain pickle are functions of the agent's integrations, named
# as "module:function"; nothing outside the agent is ever imported from a store.
_LOADER_PREFIX = "autologagent.integrations."


def pickle_modules(data: bytes) -> set[str]:
    """The modules whose classes and functions a pickle refers to, read without loading it."""
    modules: set[str] = set()
    strings: list[str] = []
    for opcode, arg, _pos in pickletools.genops(data):
        name = opcode.name
        if name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            strings.append(arg)
            del strings[:-2]
        elif name == "STACK_GLOBAL" and len(strings) == 2:
            modules.add(strings[0])
        elif name in ("GLOBAL", "INST"):
            modules.add(str(arg).split(" ")[0])
    return modules


def log_model(
    run_id: str,
    data: bytes | Callable[[], bytes],
    file_name: str,
    flavor: str,
    loader: str,
    modules: Iterable[str] | Callable[[], Iterable[str]],
    flavor_info: dict[str, Any] | None = None,
    signature: dict[str, Any] | None = None,
    artifact_path: str = MODEL_DIR,
) -> None:
    """Write a captured model into ``run_id``'s artifacts, on the background worker.

    ``modules`` (or a function giving them, run off the training thread) names the
    modules the model needs; their distributions make ``requirements.txt``.
    ``data`` may be a function too, for a model that nothing can change once
    training returns (a booster rebuilt from its own text): it is serialised on the
    background worker then, off the training thread.
    """
    if loader != PICKLE_LOADER and not loader.startswith(_LOADER_PREFIX):
        raise ValueError(f"model loader {loader!r} is not one of the agent's")
    created = time.time()

    def write() -> None:
        payload = data() if callable(data) else data
        module_names = set(modules() if callable(modules) else modules)
        pins = _packages.distributions_for(module_names)
        _artifacts.write_bytes(run_id, f"{artifact_path}/{file_name}", payload)
        _artifacts.write_text(
            run_id, f"{artifact_path}/requirements.txt", _packages.requirements_text(pins)
        )
        metadata = {
            "artifact_path": artifact_path,
            "run_id": run_id,
            "utc_time_created": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(created)),
            "flavors": {
                flavor: {"model_file": file_name, **(flavor_info or {})},
                "autologagent": {
                    "loader": loader,
                    "model_file": file_name,
                    "sha256": hashlib.sha256(payload).hexdigest(),
                    "python_version": platform.python_version(),
                },
            },
            "signature": signature,
            "requirements": pins,
        }
        _artifacts.write_text(
            run_id, f"{artifact_path}/{METADATA_FILE}", json.dumps(metadata, indent=2) + "\n"
        )

    _background.submit(write, f"logging the model of run {run_id}")


class ModelNotFound(LookupError):
    """The run logged no model at that path."""


def load_model(run_id: str, artifact_path: str = MODEL_DIR, uri: str | None = None) -> Any:
    """The model ``run_id`` logged, as a live object (an estimator, a booster...).

    ``run_id`` may be a unique prefix or ``last``; ``uri`` defaults to the
    configured store. A pickled model runs code as it loads: load models only
    from a store you trust (the file's digest is checked against the one recorded
    when it was logged, so a file swapped afterwards is refused).
    """
    from autologagent import _bootstrap
    from autologagent._store import open_store

    # A model this process just logged may still be being written, and its run's
    # row may still be queued for the store.
    _background.wait()
    writer = sys.modules.get("autologagent._writer")
    if writer is not None:
        writer.wait_idle()
    store_uri = uri or str(_bootstrap.config().get("tracking_uri"))
    store = open_store(store_uri, create=False)
    try:
        full_id = store.resolve_run_id(run_id)
        folder = os.path.join(store.artifact_dir(full_id), *_safe_parts(artifact_path))
    finally:
        store.close()
    metadata_path = os.path.join(folder, METADATA_FILE)
    if not os.path.isfile(metadata_path):
        raise ModelNotFound(f"run {full_id} has no model at {artifact_path!r}")
    with open(metadata_path, encoding="utf-8") as handle:
        metadata = json.load(handle)
    own = metadata["flavors"]["autologagent"]
    path = os.path.join(folder, *_safe_parts(own["model_file"]))
    with open(path, "rb") as handle:
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != own["sha256"]:
        raise ValueError(
            f"the model file {path} does not match the digest recorded when it was logged; "
            "refusing to load it"
        )
    return _loader(own["loader"])(data, path)


def _safe_parts(relative: str) -> list[str]:
    parts = [part for part in relative.replace("\\", "/").split("/") if part not in ("", ".")]
    if not parts or relative.startswith("/") or ".." in parts:
        raise ValueError(f"artifact path {relative!r} must be relative, without '..'")
    return parts


def _loader(name: str) -> Callable[[bytes, str], Any]:
    if name == PICKLE_LOADER:
        import pickle

        return lambda data, _path: pickle.loads(data)
    module_name, _, function = name.partition(":")
    if not module_name.startswith(_LOADER_PREFIX) or not function:
        raise ValueError(f"unknown model loader {name!r} in the model's metadata")
    import importlib

    return getattr(importlib.import_module(module_name), function)  # type: ignore[no-any-return]
