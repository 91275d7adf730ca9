"""wrapt's FunctionWrapper, made to pickle by reference like the function it wraps."""

from __future__ import annotations

import copy
import sys
from typing import Any, SupportsIndex

import wrapt


class _PicklableBoundWrapper(wrapt.BoundFunctionWrapper):
    """A bound method still pickles as ``getattr(instance, name)``; ``Class.method`` as
    ``getattr(Class, name)``."""

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        instance = self._self_instance
        if instance is None:  # looked up on the class, not on an instance
            instance = getattr(self, "_self_owner", None) or _defining_class(self.__wrapped__)
        return (getattr, (instance, self.__wrapped__.__name__))

    def __copy__(self) -> Any:
        return self  # wrapt's proxies refuse to be copied; a bound method's copy is itself

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        """As ``copy.deepcopy`` treats a bound method: the same method of a copied instance."""
        function, args = self.__reduce_ex__(4)
        return function(*copy.deepcopy(args, memo))


def _defining_class(function: Any) -> Any:
    """The class a method is defined in, from its module and qualified name."""
    owner = sys.modules[function.__module__]
    for part in function.__qualname__.split(".")[:-1]:
        owner = getattr(owner, part)
    return owner


class AgentFunctionWrapper(wrapt.FunctionWrapper):
    """wrapt's FunctionWrapper that pickles by reference, as the function it wraps.

    A plain function pickles as "module.qualname"; returning the qualified name
    makes pickle look the wrapper up under the same name and find itself there.
    """

    __bound_function_wrapper__ = _PicklableBoundWrapper

    def __reduce_ex__(self, protocol: SupportsIndex) -> str:
        return str(self.__wrapped__.__qualname__)

    # ``copy`` returns a function itself; wrapt's proxies refuse to be copied, which
    # broke ``copy.deepcopy`` of anything holding a patched function (sklearn's
    # ``get_scorer`` deep-copies scorers that hold ``accuracy_score``).
    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self


# wrapt's implementation base (its C type where the extension loaded): what
# ``FunctionWrapper.__init__`` hands the binding it worked out to.
_FUNCTION_WRAPPER_BASE = wrapt.FunctionWrapper.__bases__[0]


def wrap_module_function(function: Any, wrapper: Any) -> AgentFunctionWrapper:
    """Wrap a function that lives in a module, not in a class.

    wrapt calls a wrapped function by first looking up its ``__self__`` (for a
    bound method it was given); a plain function has none, so every call raised
    and swallowed an AttributeError, with its message formatted: 0.45 µs a call,
    a third of what the agent added to a PyTorch step through
    ``torch.autograd.backward``. Bound as a static method, the wrapper calls
    straight through. Should the function be put on a class, it still binds to
    the instance as before: wrapt binds it with the function's own ``__get__``.
    """
    wrapped = AgentFunctionWrapper.__new__(AgentFunctionWrapper, function, wrapper)
    _FUNCTION_WRAPPER_BASE.__init__(wrapped, function, None, wrapper, None, "staticmethod")
    return wrapped
