"""PyTorch: plain training loops, logged from the calls every loop makes.

A plain loop has no training call with a boundary, so everything goes to the
process run (or the user's active run), as loop-shaped training does:

- an optimizer's construction (``Optimizer.__init__``): ``optimizer_name``, its
  ``defaults`` (``lr``, ``momentum``, ``betas``...) and ``num_params`` as params,
  as MLflow's Lightning autolog names them;
- every optimizer step (torch's global step post-hook): the global step, and
  each param group's learning rate (``lr``, ``lr-group1``...) when it changes;
- the loss: the 0-dim tensor ``backward()`` is called on, as ``train_loss``, one
  point per step (or per ``log_every_n_steps``). A CPU loss is read at once
  (``item()``, a microsecond); any other is only detached and kept, and those
  become floats in batches (one ``torch.stack(...).tolist()`` per second or 256
  steps, at an epoch's end and at exit), so a CUDA loop is never synchronised
  per step;
- epochs: each fresh iteration over the DataLoader that optimizer steps happen
  in (``DataLoader.__iter__``) ends the previous epoch: ``train_loss_epoch`` (its
  mean loss) and ``epoch``, both at the epoch's index as step;
- ``torch.save(obj, path)`` of a module or a (state) dict: the file as an
  artifact, copied by the background worker after the save returned, and the
  module's printed architecture as ``model_summary.txt``.

Inside a patched training call (Lightning's ``Trainer.fit``, an sklearn
``fit``) and in worker processes (DataLoader workers, multiprocessing children)
these hooks do nothing: the training call logs, and workers never make runs.
Under ``torchrun`` rank 0 logs all of this into the job's one run, and the other
ranks only add their system metrics (see ``_session``).
"""

from __future__ import annotations

import os
import sys
import time
import weakref
from collections.abc import Mapping
from itertools import repeat
from operator import itemgetter
from types import ModuleType
from typing import Any

from autologagent import _bootstrap, _errors, _patching, _runs, _session, _writer

NAME = "torch"
# The PyTorch releases this integration is tested with, (major, minor) inclusive.
SUPPORTED = ((2, 0), (2, 13))
LOSS_KEY = "train_loss"
EPOCH_LOSS_KEY = "train_loss_epoch"
EPOCH_KEY = "epoch"
SUMMARY_FILE = "model_summary.txt"
# Losses are turned into floats when this many wait, or this many seconds passed.
CONVERT_EVERY_STEPS = 256
CONVERT_EVERY_S = 1.0

_now = time.time
_inside_training_call = _patching.inside_training_call
_depth = _patching._thread_state  # the hot paths read its ``depth`` (inside_training_call())


class _LoopState:
    """What the hooks of one process know about its loop (one training thread)."""

    def __init__(self) -> None:
        self.off = False  # a worker process: the hooks do nothing
        self.step = 0  # optimizer steps so far
        self.epoch = 0
        self.epoch_start = 0  # the step the current epoch started at
        # every loss backward() saw, in order: floats (CPU) or detached tensors
        self.losses: list[Any] = []
        self.taken = 0  # how many of them belong to a step already
        # (step, where its losses end in ``losses``, timestamp, run id): to become points
        self.buffer: list[tuple[int, int, float, str]] = []
        self.last_convert = 0.0  # the first step converts
        self.epoch_sums: dict[int, list[float]] = {}  # epoch -> [sum, count]
        self.loader: Any = None  # weak reference to the training DataLoader
        self.current_loader: Any = None  # weak reference to the last iterated one
        self.current_loader_step = 0  # the step count when it was iterated
        self.lrs: dict[int, list[Any]] = {}  # id(optimizer) -> last learning rates
        self.optimizers = 0
        self.summarised: set[int] = set()
        self.state_dicts: dict[int, Any] = {}  # id(last state dict) -> (weak ref to module, it)
        self.state_dict_depth = 0


_state = _LoopState()
_step_hook_handle: Any = None
_registered_exit = False


def _silent() -> bool:
    return _state.off or _inside_training_call()


def _run_id() -> str:
    """The run a record goes to now (the process run starts at the first)."""
    return _runs.fast_run_id or _runs.current_run_id()


# --- patching ------------------------------------------------------------------


def patch_module(module: ModuleType) -> None:
    """Patch the optimizer, backward, DataLoader and save as their modules load."""
    global _step_hook_handle, _registered_exit
    name = module.__name__
    if name == "torch":
        _check_version(module)
        serialization = sys.modules.get("torch.serialization")
        if serialization is not None:  # patched already, unless torch loaded before the agent
            _patching.patch(serialization, "save", _save_wrapper, NAME)
            _patching.patch_alias(module, "save", serialization, NAME)
    elif name == "torch.optim.optimizer":
        optimizer = vars(module).get("Optimizer")
        register = vars(module).get("register_optimizer_step_post_hook")
        if optimizer is not None and register is not None:
            _patching.patch(optimizer, "__init__", _optimizer_init_wrapper, NAME)
            if _step_hook_handle is None:
                # torch calls global step hooks after every optimizer's step: one
                # hook sees them all, where patching would need every subclass.
                _step_hook_handle = register(_after_step)
    elif name == "torch.autograd":
        # Where Tensor.backward() sends every backward pass: a module function, so
        # calling the wrapper binds nothing (a method wrapper is bound per call).
        _patching.patch(module, "backward", _backward_wrapper, NAME)
    elif name == "torch.utils.data.dataloader":
        loader = vars(module).get("DataLoader")
        if loader is not None:
            _patching.patch(loader, "__iter__", _loader_iter_wrapper, NAME)
    elif name == "torch.serialization":
        _patching.patch(module, "save", _save_wrapper, NAME)
    elif name == "torch.nn.modules.module":
        module_class = vars(module).get("Module")
        if module_class is not None:
            _patching.patch(module_class, "state_dict", _state_dict_wrapper, NAME)
    if not _registered_exit:
        _registered_exit = True
        _state.off = not _session.logs_training()  # workers, and ranks other than 0
        os.register_at_fork(after_in_child=_after_fork_in_child)
        import atexit

        # Registered after the agent's own exit handler, so it runs before the runs end.
        atexit.register(_at_exit)


def unpatch() -> None:
    """Restore every original and remove the step hook."""
    global _step_hook_handle
    _patching.unpatch(NAME)
    if _step_hook_handle is not None:
        _step_hook_handle.remove()
        _step_hook_handle = None


def autolog(disable: bool = False, **options: Any) -> None:
    """Options for PyTorch alone; they supersede ``autologagent.autolog(...)``."""
    _bootstrap.autolog_integration(NAME, disable=disable, **options)


def _check_version(module: ModuleType) -> None:
    _patching.warn_if_untested(module, "PyTorch", SUPPORTED, "torch-version")


def _after_fork_in_child() -> None:
    """A forked child (a DataLoader worker) is a worker: its hooks stay silent."""
    _state.off = True
    _state.buffer = []
    _state.losses = []
    _state.taken = 0


def _strip(exc: BaseException, wrapper: Any) -> None:
    """Take the wrapper's frame out of a user's exception (re-raised bare, so it stays out)."""
    exc.__traceback__ = _patching._without_frame(exc.__traceback__, wrapper.__code__)


# --- the optimizer -------------------------------------------------------------


def _optimizer_init_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        _strip(exc, _optimizer_init_wrapper)
        raise
    if not _silent():
        try:
            _log_optimizer(instance)
        except Exception as own:
            _errors.report(own, "logging a torch optimizer")
    elif _session.is_other_rank() and not _inside_training_call():
        try:
            _run_id()  # the rank joins its job's run: its system metrics from now on
        except Exception as own:
            _errors.report(own, "joining the job's run")
    return result


def _log_optimizer(optimizer: Any) -> None:
    from autologagent import _fluent

    params: dict[str, Any] = {"optimizer_name": type(optimizer).__name__}
    for key, value in dict(getattr(optimizer, "defaults", {}) or {}).items():
        if isinstance(value, (bool, int, float, str, tuple, type(None))):
            params[key] = value
        elif hasattr(value, "numel") and value.numel() == 1:
            params[key] = value.item()  # a tensor lr: once, at construction
    params["num_params"] = sum(
        param.numel() for group in optimizer.param_groups for param in group["params"]
    )
    _state.optimizers += 1
    if _state.optimizers > 1:  # a second optimizer (a GAN's): its own prefix
        prefix = f"optimizer{_state.optimizers}_"
        params = {prefix + key: value for key, value in params.items()}
    _fluent.log_params(params, run_id=_run_id())


def _after_step(optimizer: Any, args: tuple, kwargs: dict) -> None:
    """torch's global step post-hook: count the step, mark its losses, watch the lr.

    The hot path: the step goes into the buffer as where its losses end, its
    time and its run; ``_convert`` turns many steps into points at once (means,
    epoch sums, ``log_every_n_steps``, the writer's queue). Every line here
    costs every step of every loop.
    """
    state = _state
    if state.off or _depth.depth:  # a worker, or inside a training call
        return
    try:
        end = len(state.losses)
        if end != state.taken:  # backward() ran since the last step
            state.taken = end
            now = _now()
            buffer = state.buffer
            buffer.append((state.step, end, now, _runs.fast_run_id or _run_id()))
            if len(buffer) >= CONVERT_EVERY_STEPS or now - state.last_convert >= CONVERT_EVERY_S:
                _convert()
        groups = optimizer.param_groups
        last = state.lrs.get(id(optimizer))
        if last is None or len(last) != len(groups):
            _log_lrs(optimizer, groups, last)
        else:
            index = 0  # (zip() alone costs more than this loop for one group)
            for group in groups:
                if group["lr"] is not last[index]:
                    _log_lrs(optimizer, groups, last)
                    break
                index += 1
    except Exception as own:
        _errors.report(own, "logging a torch optimizer step")
    state.step += 1


def _log_lrs(optimizer: Any, groups: list[dict], last: list[Any] | None) -> None:
    """The learning rates that changed with this step (at the step's index)."""
    from autologagent import _fluent

    step, now, run_id = _state.step, _now(), _run_id()
    current = [group["lr"] for group in groups]
    _state.lrs[id(optimizer)] = current
    for index, lr in enumerate(current):
        if last is not None and index < len(last) and lr == last[index]:
            continue
        if not isinstance(lr, (int, float)):
            continue  # a tensor lr would need a device sync: left out
        key = "lr" if index == 0 else f"lr-group{index}"
        _fluent.log_metric(key, float(lr), step=step, timestamp=int(now * 1000), run_id=run_id)


# --- the loss --------------------------------------------------------------------


def _backward_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """``torch.autograd.backward(tensors, ...)``, which ``loss.backward()`` calls."""
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        _strip(exc, _backward_wrapper)
        raise
    state = _state
    if not state.off and not _depth.depth:
        try:
            loss = args[0] if args else kwargs.get("tensors")
            # backward() returned: the tensor requires grad. A scalar is a loss.
            if loss.dim() == 0:
                # On the CPU reading the value costs less than keeping a tensor;
                # elsewhere it would wait for the device, so the tensor is kept.
                state.losses.append(loss.item() if loss.is_cpu else loss.detach())
        except AttributeError:  # a sequence of tensors (or graph edges): not one loss
            pass
        except Exception as own:
            _errors.report(own, "keeping a torch loss")
    return result


def _convert() -> None:
    """Turn the buffered steps into points: every loss that is not yet a float is
    converted by one ``torch.stack(...).tolist()`` for all (one device sync).

    Losses seen after the last step stay for the next one.
    """
    state = _state
    buffer = state.buffer
    state.buffer = []
    state.last_convert = _now()
    if not buffer:
        return
    end = buffer[-1][1]
    losses = state.losses[:end]
    del state.losses[:end]
    state.taken -= end
    tensors = [loss for loss in losses if loss.__class__ is not float]
    if tensors:
        floats = iter(_as_floats(tensors))
        losses = [loss if loss.__class__ is float else next(floats) for loss in losses]
    if end == len(buffer):  # one backward() a step: the losses are the values
        values = losses
    else:  # gradient accumulation: a step's loss is the mean of its backward losses
        values = []
        start = 0
        for entry in buffer:
            part = losses[start : entry[1]]
            values.append(part[0] if len(part) == 1 else sum(part) / len(part))
            start = entry[1]
    sums = state.epoch_sums.setdefault(state.epoch, [0.0, 0])  # the buffer is this epoch's
    sums[0] += sum(values)
    sums[1] += len(values)
    # Straight onto the writer's queue (log_metric's own checks hold by construction);
    # the run ids came from _run_id(), which started the run.
    _writer.ensure_started()
    points = zip(
        map(_run_of, buffer), repeat(LOSS_KEY), values, map(_step_of, buffer), map(_time_of, buffer)
    )
    # read late: autolog() may have changed it since
    every_n = int(_bootstrap.config().get("log_every_n_steps", NAME) or 1)
    if every_n != 1:
        points = (point for point in points if point[3] % every_n == 0)
    _writer.metrics.extend(points)


_step_of = itemgetter(0)
_time_of = itemgetter(2)
_run_of = itemgetter(3)


def _as_floats(tensors: list[Any]) -> list[float]:
    try:
        import torch

        return torch.stack([tensor.float() for tensor in tensors]).tolist()
    except (RuntimeError, TypeError, ValueError):  # mixed devices or shapes
        return [float(tensor) for tensor in tensors]


# --- epochs ------------------------------------------------------------------------


def _loader_iter_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    if not _state.off and not _inside_training_call():
        try:
            _on_loader_iter(instance)
        except Exception as own:
            _errors.report(own, "logging a torch epoch")
    try:
        return wrapped(*args, **kwargs)
    except BaseException as exc:
        _strip(exc, _loader_iter_wrapper)
        raise


def _on_loader_iter(loader: Any) -> None:
    state = _state
    training = _training_loader()
    if training is loader and state.step > state.epoch_start:
        _end_epoch()
    state.current_loader = weakref.ref(loader)
    state.current_loader_step = state.step


def _training_loader() -> Any:
    """The DataLoader whose loop the optimizer steps in: the last one iterated before
    a step (worked out when a loader is iterated again, or at exit, not per step)."""
    state = _state
    if state.loader is None and state.current_loader is not None:
        if state.step > state.current_loader_step:
            state.loader = state.current_loader
    return state.loader() if state.loader is not None else None


def _end_epoch() -> None:
    """Log the epoch that ends: its mean loss and its index."""
    from autologagent import _fluent

    state = _state
    _convert()
    epoch = state.epoch
    run_id = _run_id()
    sums = state.epoch_sums.pop(epoch, None)
    if sums and sums[1]:
        _fluent.log_metric(EPOCH_LOSS_KEY, sums[0] / sums[1], step=epoch, run_id=run_id)
    _fluent.log_metric(EPOCH_KEY, float(epoch), step=epoch, run_id=run_id)
    state.epoch = epoch + 1
    state.epoch_start = state.step


def _at_exit() -> None:
    """Before the runs end: the losses still buffered, and the last epoch."""
    state = _state
    if state.off:
        return
    try:
        if _training_loader() is not None and state.step > state.epoch_start:
            _end_epoch()
        else:
            _convert()
    except Exception as own:
        _errors.report(own, "logging the last torch losses")


# --- checkpoints ----------------------------------------------------------------------


def _state_dict_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """Remember which module an outermost ``state_dict()`` came from (for its summary)."""
    state = _state
    state.state_dict_depth += 1
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        _strip(exc, _state_dict_wrapper)
        raise
    finally:
        state.state_dict_depth -= 1
    if state.state_dict_depth == 0 and not state.off:
        try:
            state.state_dicts = {id(result): (weakref.ref(instance), result)}
        except TypeError:
            pass
    return result


def _save_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        _strip(exc, _save_wrapper)
        raise
    if not _state.off and not _inside_training_call():
        try:
            obj = args[0] if args else kwargs.get("obj")
            target = args[1] if len(args) > 1 else kwargs.get("f")
            _on_save(obj, target)
        except Exception as own:
            _errors.report(own, "logging a torch checkpoint")
    return result


def _on_save(obj: Any, target: Any) -> None:
    module = _module_of(obj)
    if module is None and not isinstance(obj, Mapping):
        return
    if not isinstance(target, (str, os.PathLike)):
        return  # a buffer or an open file: nothing to copy
    path = os.path.abspath(os.fspath(target))
    run_id = _run_id()
    from autologagent import _artifacts, _background

    if module is not None and id(module) not in _state.summarised:
        _state.summarised.add(id(module))
        _artifacts.write_later(run_id, SUMMARY_FILE, _summary(module))
    if not _bootstrap.config().get("log_models", NAME):
        return
    name = os.path.basename(path)
    _background.submit(lambda: _copy(run_id, name, path), f"copying checkpoint {name}")


def _module_of(obj: Any) -> Any:
    """The module saved (``torch.save(model)``) or whose state dict is saved."""
    nn_module = sys.modules.get("torch.nn.modules.module")
    module_class = getattr(nn_module, "Module", None)
    if module_class is not None and isinstance(obj, module_class):
        return obj
    entry = _state.state_dicts.get(id(obj))
    if entry is not None and entry[1] is obj:
        return entry[0]()
    return None


def _summary(module: Any) -> str:
    total = sum(param.numel() for param in module.parameters())
    trainable = sum(param.numel() for param in module.parameters() if param.requires_grad)
    return f"{module}\n\nTotal params: {total:,}\nTrainable params: {trainable:,}\n"


def _copy(run_id: str, name: str, path: str) -> None:
    from autologagent import _artifacts

    with open(path, "rb") as handle:
        data = handle.read()
    _artifacts.write_bytes(run_id, name, data)
