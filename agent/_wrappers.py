"""wrapt's FunctionWrapper, made to pickle by reference like the function it wraps."""

from __future__ import annotations

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
