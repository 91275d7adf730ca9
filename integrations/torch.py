"""PyTorch: plain training loops, logged from the calls every loop makes.

A plain loop has no training call with a boundary, so everything goes to the
process run (or the user's active run), as loop-shaped training does:

- an optimizer's construction (``Optimizer.__init__``): ``optimizer_name``, its
  ``defaults`` (``lr``, ``momentum``, ``betas``...) and ``num_params`` as params,
  as MLflow's Lightning autolog names them;
- every optimizer step (torch's global step post-hook): the global step;
- each param group's learning rate (``lr``, ``lr-group1``...) when it changes:
  after every scheduler's ``step()`` (at the index of the step it applies to),
  and, for a rate set by hand, checked with every conversion (at least once a
  second), at the step it was seen at;
- the loss: the 0-dim tensor ``backward()`` is called on, as ``train_loss``, one
  point per step (or per ``log_every_n_steps``). A CPU loss is read at once
  (``item()``); any other is only detached and kept. Steps become points in
  batches, about once a second (when the writer thread wakes), at an epoch's
  end, at a change of run and at exit: one ``torch.stack(...).tolist()`` for the
  kept tensors (a CUDA loop is never synchronised per step), and the clock read
  once: a batch's steps are stamped evenly across the time it took;
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

import operator
import os
import sys
import time
import weakref
from collections.abc import Mapping
from itertools import repeat
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

_now = time.time
_inside_training_call = _patching.inside_training_call
_depth = _patching._thread_state  # the hot paths read its ``depth`` (inside_training_call())


class _LoopState:
    """What the hooks of one process know about its loop (one training thread)."""

    def __init__(self) -> None:
        self.off = False  # a worker process: the hooks do nothing
        self.epoch = 0
        self.epoch_start = 0  # the step the current epoch started at
        # Since the last conversion: every loss backward() saw, in order (floats on
        # the CPU, detached tensors elsewhere), and for every optimizer step how many
        # losses there were when it ran. One append a step, no clock read, no object
        # built: a step's index is its place in ``ends`` after ``base_step``.
        self.losses: list[Any] = []
        self.ends: list[int] = []
        self.base_step = 0  # the index of the step at ends[0]
        self.run_id: str | None = None  # the run the buffered steps go to
        # ``due`` says the next step has more to do than its append: convert what is
        # buffered (set by the writer thread about once a second, with the time it
        # did, and when the run changes), or check the learning rates (set by a
        # scheduler's step()). The first step does both.
        self.due = True
        self.convert_due = True
        self.lrs_due = True
        self.due_time = 0.0
        self.batch_time = 0.0  # when the previous conversion ran
        self.optimizers_seen: list[Any] = []  # weak references, for their learning rates
        self.epoch_sums: dict[int, list[float]] = {}  # epoch -> [sum, count]
        self.loader: Any = None  # weak reference to the training DataLoader
        self.current_loader: Any = None  # weak reference to the last iterated one
        self.current_loader_step = 0  # the step count when it was iterated
        self.lrs: dict[int, list[Any]] = {}  # id(optimizer) -> last learning rates logged
        self.optimizers = 0
        self.summarised: set[int] = set()
        self.state_dicts: dict[int, Any] = {}  # id(last state dict) -> (weak ref to module, it)
        self.state_dict_depth = 0

    @property
    def step(self) -> int:
        """Optimizer steps so far."""
        return self.base_step + len(self.ends)


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
    elif name == "torch.optim.lr_scheduler":
        base = vars(module).get("LRScheduler")
        for value in list(vars(module).values()):
            if isinstance(value, type) and base is not None and issubclass(value, base):
                # step() where a scheduler class defines it (ReduceLROnPlateau's own...)
                _patching.patch(value, "step", _scheduler_step_wrapper, NAME)
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
        _writer.on_tick(_on_tick)
        _runs.on_change(_on_run_change)
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
    _state.losses = []
    _state.ends = []


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
    _state.optimizers_seen.append(weakref.ref(optimizer))
    if _state.optimizers > 1:  # a second optimizer (a GAN's): its own prefix
        prefix = f"optimizer{_state.optimizers}_"
        params = {prefix + key: value for key, value in params.items()}
    _fluent.log_params(params, run_id=_run_id())


def _after_step(optimizer: Any, args: tuple, kwargs: dict) -> None:
    """torch's global step post-hook: mark where the step's losses end.

    The hot path: every line here costs every step of every loop (a line costs
    about a microsecond in a real step, where torch's own code keeps the CPU's
    caches full), so a step is one append; ``_convert`` turns the buffered steps
    into points when the writer thread says it is time.
    """
    state = _state
    # a worker, or inside a training call (the thread-local read only while one is open)
    if state.off or (_patching.open_training_calls and _depth.depth):
        return
    if state.due:
        try:
            _on_due()
        except Exception as own:
            _errors.report(own, "logging a torch optimizer step")
    state.ends.append(len(state.losses))


def _on_due() -> None:
    """A step with more to do: the buffer's conversion, the learning rates' check.

    The rates are checked at the index of this step (the first to use them).
    """
    state = _state
    state.due = False  # cleared first: a flag set meanwhile is seen at the next step
    converting = state.convert_due
    if converting:
        state.convert_due = False
        _convert()
    if converting or state.lrs_due:
        state.lrs_due = False
        _check_all_lrs()


def _on_tick(now: float) -> None:
    """The writer thread's wake (about once a second): convert at the next step."""
    state = _state
    state.due_time = now
    state.convert_due = True
    state.due = True


def _on_run_change() -> None:
    """The run records go to may have changed: what is buffered goes to the run it
    was logged in, converted at the next step."""
    state = _state
    state.due_time = 0.0
    state.convert_due = True
    state.due = True


def _check_lrs(optimizer: Any, step: int) -> None:
    """Log the learning rates of ``optimizer`` that changed since they were last logged."""
    from autologagent import _fluent

    groups = optimizer.param_groups
    current = [group["lr"] for group in groups]
    last = _state.lrs.get(id(optimizer))
    if last is not None and len(last) == len(current):
        if all(map(operator.is_, current, last)):
            return
    _state.lrs[id(optimizer)] = current
    now, run_id = _now(), _run_id()
    for index, lr in enumerate(current):
        if last is not None and index < len(last) and lr == last[index]:
            continue
        if not isinstance(lr, (int, float)):
            continue  # a tensor lr would need a device sync: left out
        key = "lr" if index == 0 else f"lr-group{index}"
        _fluent.log_metric(key, float(lr), step=step, timestamp=int(now * 1000), run_id=run_id)


def _check_all_lrs() -> None:
    """Every live optimizer's learning rates, at the index of the next step."""
    state = _state
    alive = []
    for ref in state.optimizers_seen:
        optimizer = ref()
        if optimizer is not None:
            alive.append(ref)
            _check_lrs(optimizer, state.step)
    state.optimizers_seen = alive


def _scheduler_step_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """A learning-rate scheduler's ``step()``: its rates are logged at the next step
    (none after the loop's last step, which no step used)."""
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        _strip(exc, _scheduler_step_wrapper)
        raise
    state = _state
    state.lrs_due = True  # checked at the next step, the first the new rates apply to
    state.due = True
    return result


# --- the loss --------------------------------------------------------------------


def _backward_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """``torch.autograd.backward(tensors, ...)``, which ``loss.backward()`` calls."""
    try:
        result = wrapped(*args, **kwargs)
    except BaseException as exc:
        _strip(exc, _backward_wrapper)
        raise
    state = _state
    if not state.off and not (_patching.open_training_calls and _depth.depth):
        try:
            loss = args[0] if args else kwargs.get("tensors")
            # backward() returned, so the tensor required grad; one value makes a loss.
            if loss.is_cpu:
                # On the CPU reading the value costs less than keeping a tensor
                # (item() refuses a tensor of several values: not a loss).
                state.losses.append(loss.item())
            elif loss.dim() == 0:
                # Elsewhere reading it would wait for the device: the tensor is kept.
                state.losses.append(loss.detach())
        except (AttributeError, RuntimeError):  # a sequence of tensors, or several values
            pass
        except Exception as own:
            _errors.report(own, "keeping a torch loss")
    return result


def _convert() -> None:
    """Turn the buffered steps into points: every loss that is not yet a float is
    converted by one ``torch.stack(...).tolist()`` for all (one device sync).

    The steps are stamped evenly between the previous conversion and the writer's
    wake that made this one due (or now): the clock is read here, not per step.
    A step without a loss (no backward() since the previous step) makes no point;
    losses seen after the last step stay for the next one.
    """
    state = _state
    now = _now()
    due_time = state.due_time
    start_time = state.batch_time
    state.batch_time = now
    ends = state.ends
    state.ends = []
    base = state.base_step
    state.base_step = base + len(ends)
    # The buffered steps go to the run records went to at the previous conversion
    # (a change of run makes one: see _on_run_change); the next ones to today's.
    run_id = state.run_id
    state.run_id = _runs.fast_run_id  # None: worked out when they are converted
    _writer.ensure_started()  # its wakes make the next conversions due
    end = ends[-1] if ends else 0
    if not end:
        return
    if run_id is None:
        run_id = _run_id()  # the first steps' records start the run
    losses = state.losses[:end]
    del state.losses[:end]
    tensors = [loss for loss in losses if loss.__class__ is not float]
    if tensors:
        floats = iter(_as_floats(tensors))
        losses = [loss if loss.__class__ is float else next(floats) for loss in losses]
    count = len(ends)
    last_time = due_time if start_time < due_time < now else now
    if not start_time:
        start_time = last_time  # the first batch: no earlier time to spread from
    spacing = (last_time - start_time) / count
    stamps: Any = map(start_time.__add__, map(spacing.__mul__, range(1, count + 1)))
    steps: Any
    if end == count and ends == list(range(1, count + 1)):  # one backward() a step
        values, steps = losses, range(base, base + count)
    else:  # gradient accumulation: a step's loss is the mean of its backward losses
        every, values, steps = list(stamps), [], []
        stamps = []
        start = 0
        for index, stop in enumerate(ends):
            if stop == start:
                continue
            part = losses[start:stop]
            values.append(part[0] if len(part) == 1 else sum(part) / len(part))
            steps.append(base + index)
            stamps.append(every[index])
            start = stop
    sums = state.epoch_sums.setdefault(state.epoch, [0.0, 0])  # the buffer is this epoch's
    sums[0] += sum(values)
    sums[1] += len(values)
    # Straight onto the writer's queue (log_metric's own checks hold by construction).
    points = zip(repeat(run_id), repeat(LOSS_KEY), values, steps, stamps)
    # read late: autolog() may have changed it since
    every_n = int(_bootstrap.config().get("log_every_n_steps", NAME) or 1)
    if every_n != 1:
        points = (point for point in points if point[3] % every_n == 0)
    _writer.metrics.extend(points)


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
