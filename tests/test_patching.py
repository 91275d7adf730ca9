"""Safe patching and the import hook, checked in-process on small modules of our own.

These are the agent's own mechanisms (no framework is faked): a package written
to a temporary folder stands in for "a module the program imports".
"""

from __future__ import annotations

import inspect
import pickle
import sys
import textwrap
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from autologagent import _finder, _patching
from conftest import CHURN_SOURCE

PACKAGE_SOURCE = {
    "__init__.py": "VALUE = 1\n",
    "core.py": '''
        class Model:
            """A model."""

            def __init__(self, alpha=1.0):
                self.alpha = alpha

            def fit(self, data, weight=None):
                """Fit the model."""
                self.fitted_ = list(data)
                if data == "boom":
                    raise ValueError("bad data")
                return self

            def fit_twice(self, data):
                self.fit(data)
                return self.fit(data)


        def train(data, *, rounds=3):
            """Train something."""
            return {"data": data, "rounds": rounds}
    ''',
}


@pytest.fixture
def package(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh importable package with a unique name, removed afterwards."""
    name = f"toypkg_{request.node.name.replace('[', '_').replace(']', '_').replace('-', '_')}"
    folder = tmp_path / name
    folder.mkdir()
    for file, source in PACKAGE_SOURCE.items():
        (folder / file).write_text(textwrap.dedent(source))
    sys.path.insert(0, str(tmp_path))
    try:
        yield name
    finally:
        sys.path.remove(str(tmp_path))
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]


class RecordingHooks(_patching.TrainingHooks):
    """Counts what the boundary calls."""

    calls: list[str]

    def __init__(self, calls: list[str], fail_in: str | None = None) -> None:
        self.calls = calls
        self.fail_in = fail_in

    def _record(self, what: str) -> None:
        self.calls.append(what)
        if self.fail_in == what:
            raise RuntimeError(f"agent bug in {what}")

    def start(self) -> None:
        self._record("start")

    def succeeded(self, result: Any) -> None:
        self._record("succeeded")

    def failed(self, exc: BaseException) -> None:
        self._record("failed")


def _patch_fit(module: ModuleType, calls: list[str], fail_in: str | None = None) -> None:
    wrapper = _patching.training_wrapper(
        f"test {module.__name__}", lambda instance, args, kwargs: RecordingHooks(calls, fail_in)
    )
    assert _patching.patch(module.Model, "fit", wrapper, "test")
    assert _patching.patch(module, "train", wrapper, "test")


@pytest.fixture
def core(package: str) -> Iterator[ModuleType]:
    module = __import__(f"{package}.core", fromlist=["core"])
    yield module
    _patching.unpatch("test")


def test_patched_call_returns_the_same_value(core: ModuleType) -> None:
    """A patched method and function return exactly what the originals return."""
    calls: list[str] = []
    _patch_fit(core, calls)
    model = core.Model()
    assert model.fit([1, 2]) is model
    assert core.train("d", rounds=5) == {"data": "d", "rounds": 5}
    assert calls == ["start", "succeeded", "start", "succeeded"]


def test_patched_call_raises_the_same_exception_object(core: ModuleType) -> None:
    """The user's exception passes through untouched: same object, same traceback."""
    model = core.Model()
    try:
        model.fit("boom")
    except ValueError as exc:
        plain = [(f.filename, f.name, f.line) for f in traceback.extract_tb(exc.__traceback__)]
    calls: list[str] = []
    _patch_fit(core, calls)
    try:
        model.fit("boom")
    except ValueError as exc:
        patched = [(f.filename, f.name, f.line) for f in traceback.extract_tb(exc.__traceback__)]
        assert exc.args == ("bad data",)
    assert calls == ["start", "failed"]
    assert patched == plain
    assert [name for _, name, _ in patched] == [
        "test_patched_call_raises_the_same_exception_object",
        "fit",
    ]


def test_the_exception_object_is_the_one_raised(core: ModuleType) -> None:
    raised: list[BaseException] = []

    class Marker(Exception):
        pass

    def boom(data: Any) -> None:
        error = Marker("x")
        raised.append(error)
        raise error

    core.train = boom
    _patching.patch(core, "train", _patching.training_wrapper("t", lambda *a: None), "test")
    with pytest.raises(Marker) as caught:
        core.train(1)
    assert caught.value is raised[0]


def test_only_the_outermost_call_logs(core: ModuleType) -> None:
    """A patched call made inside another (a Pipeline's steps) does not log on its own."""
    calls: list[str] = []
    _patch_fit(core, calls)
    _patching.patch(
        core.Model,
        "fit_twice",
        _patching.training_wrapper("test", lambda i, a, k: RecordingHooks(calls)),
        "test",
    )
    core.Model().fit_twice([1])
    assert calls == ["start", "succeeded"]


def test_outermost_is_per_thread(core: ModuleType) -> None:
    """Two threads training at once each get their own outermost call."""
    calls: list[str] = []
    _patch_fit(core, calls)
    barrier = threading.Barrier(2)

    def train() -> None:
        barrier.wait()
        core.Model().fit([1])

    threads = [threading.Thread(target=train) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls.count("start") == 2 and calls.count("succeeded") == 2


@pytest.mark.parametrize("fail_in", ["start", "succeeded"])
def test_an_agent_error_is_one_warning_and_the_program_goes_on(
    core: ModuleType,
    fail_in: str,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug in the agent's logging is reported once on stderr; the user's call still works."""
    monkeypatch.delenv("AUTOLOG_TESTING", raising=False)
    monkeypatch.delenv("AUTOLOG_SILENT", raising=False)
    calls: list[str] = []
    _patch_fit(core, calls, fail_in=fail_in)
    model = core.Model()
    for _ in range(3):
        assert model.fit([1]) is model
    warnings = [line for line in capfd.readouterr().err.splitlines() if "autologagent" in line]
    assert len(warnings) == 1
    assert f"agent bug in {fail_in}" in warnings[0]


def test_an_agent_error_raises_in_test_mode(
    core: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AUTOLOG_TESTING=1 turns the agent's swallowed errors into failures."""
    monkeypatch.setenv("AUTOLOG_TESTING", "1")
    _patch_fit(core, [], fail_in="start")
    with pytest.raises(RuntimeError, match="agent bug in start"):
        core.Model().fit([1])


def test_patched_function_pickles_by_reference(core: ModuleType) -> None:
    """A patched module-level function still pickles as a reference to itself."""
    _patch_fit(core, [])
    restored = pickle.loads(pickle.dumps(core.train))
    assert restored is core.train


def test_patched_function_put_on_a_class_binds_as_the_function_does(core: ModuleType) -> None:
    """A module function used as a class attribute still becomes a method of instances."""
    calls: list[str] = []
    _patch_fit(core, calls)

    class Holder:
        train = core.train

    holder = Holder()
    assert holder.train(rounds=1) == {"data": holder, "rounds": 1}
    assert Holder.train([5]) == {"data": [5], "rounds": 3}
    assert calls == ["start", "succeeded", "start", "succeeded"]


def test_patched_class_and_instances_pickle(core: ModuleType) -> None:
    """Instances of a patched class, and their bound methods, pickle and come back equal."""
    _patch_fit(core, [])
    model = core.Model(alpha=2.0).fit([3])
    copy = pickle.loads(pickle.dumps(model))
    assert type(copy) is core.Model and copy.alpha == 2.0 and copy.fitted_ == [3]
    bound = pickle.loads(pickle.dumps(model.fit))
    assert bound.__self__.alpha == 2.0
    assert pickle.loads(pickle.dumps(core.Model)) is core.Model


def test_patched_method_looked_up_on_the_class_pickles(core: ModuleType) -> None:
    """``Model.fit`` (no instance) pickles and unpickles as it does unpatched."""
    _patch_fit(core, [])
    restored = pickle.loads(pickle.dumps(core.Model.fit))
    assert restored.__wrapped__ is core.Model.__dict__["fit"].__wrapped__
    model = restored(core.Model(), [4])
    assert model.fitted_ == [4]


def test_patched_callables_keep_signature_doc_and_wrapped(core: ModuleType) -> None:
    """Introspection sees the original: signature, docstring, __wrapped__, name."""
    original_fit = core.Model.__dict__["fit"]
    original_train = core.train
    _patch_fit(core, [])
    assert inspect.signature(core.Model.fit) == inspect.signature(original_fit)
    assert inspect.signature(core.Model().fit) == inspect.signature(original_fit.__get__(object()))
    assert inspect.signature(core.train) == inspect.signature(original_train)
    assert core.train.__doc__ == "Train something."
    assert core.Model.fit.__doc__ == "Fit the model."
    assert core.train.__wrapped__ is original_train
    assert core.train.__name__ == "train"


def test_patching_twice_is_patching_once_and_unpatch_restores(core: ModuleType) -> None:
    original_fit = core.Model.__dict__["fit"]
    original_train = core.train
    calls: list[str] = []
    _patch_fit(core, calls)
    assert not _patching.patch(core.Model, "fit", lambda *a: None, "test")
    core.Model().fit([1])
    assert calls == ["start", "succeeded"]
    assert _patching.unpatch("test") == 2
    assert core.Model.__dict__["fit"] is original_fit
    assert core.train is original_train


def test_inherited_methods_are_left_to_the_defining_class(core: ModuleType) -> None:
    """Patching a subclass that inherits ``fit`` changes nothing; the base's patch covers it."""

    class Sub(core.Model):
        pass

    assert not _patching.patch(Sub, "fit", lambda *a: None, "test")
    assert "fit" not in vars(Sub)


def test_finder_runs_the_hook_after_each_module_of_a_package(package: str) -> None:
    """The hook sees the package and its submodules once they have executed."""
    seen: list[tuple[str, bool]] = []

    def hook(module: ModuleType) -> None:
        seen.append((module.__name__, hasattr(module, "Model") or hasattr(module, "VALUE")))

    _finder.watch_package(package, hook)
    try:
        __import__(f"{package}.core")
    finally:
        _finder.unwatch_package(package, hook)
    assert seen == [(package, True), (f"{package}.core", True)]
    module = sys.modules[f"{package}.core"]
    assert type(module.__loader__).__name__ == "SourceFileLoader"
    assert type(module.__spec__.loader).__name__ == "SourceFileLoader"


def test_finder_patches_already_imported_modules_at_once(package: str) -> None:
    """A framework imported before activation is handed to the hook immediately."""
    __import__(f"{package}.core")
    seen: list[str] = []
    _finder.watch_package(package, lambda module: seen.append(module.__name__))
    try:
        assert seen == [package, f"{package}.core"]
    finally:
        _finder.unwatch_package(package, seen.append)


def test_hooked_import_runs_with_room_on_the_frame_stack(package: str, tmp_path: Path) -> None:
    """A watched framework's import runs where its calls do not map a chunk each time.

    The same module imported without the hook churns (the check that the test
    can see it), imported through it does not.
    """
    (tmp_path / package / "deep.py").write_text(
        CHURN_SOURCE + "\nFAULTS = page_faults_of_deep_calls()\n"
    )
    unhooked = __import__(f"{package}.deep", fromlist=["deep"]).FAULTS
    del sys.modules[f"{package}.deep"]
    _finder.watch_package(package, _ignore)
    try:
        hooked = __import__(f"{package}.deep", fromlist=["deep"]).FAULTS
    finally:
        _finder.unwatch_package(package, _ignore)
    assert unhooked > 1000
    assert hooked < 100


def _ignore(module: ModuleType) -> None:
    pass


def test_hooked_import_error_has_plain_python_s_traceback(package: str, tmp_path: Path) -> None:
    """An exception raised while a watched module executes shows no frame of the agent."""
    source = "def fail():\n    raise ValueError('x')\n\n\nfail()\n"
    (tmp_path / package / "broken.py").write_text(source)

    def traceback_of_import() -> list[tuple[str, str]]:
        sys.modules.pop(f"{package}.broken", None)
        with pytest.raises(ValueError) as caught:
            __import__(f"{package}.broken")
        return [(frame.filename, frame.name) for frame in traceback.extract_tb(caught.tb)]

    plain = traceback_of_import()
    _finder.watch_package(package, _ignore)
    try:
        hooked = traceback_of_import()
    finally:
        _finder.unwatch_package(package, _ignore)
    assert [name for _, name in plain][-2:] == ["<module>", "fail"]
    assert hooked == plain


def test_finder_is_installed_once() -> None:
    _finder.install_finder()
    _finder.install_finder()
    finders = [f for f in sys.meta_path if type(f).__name__ == "PackageHookFinder"]
    assert len(finders) == 1
