"""wrapt's FunctionWrapper, made to pickle by reference like the function it wraps."""

from __future__ import annotations

from typing import Any, SupportsIndex

import wrapt


class _PicklableBoundWrapper(wrapt.BoundFunctionWrapper):
    """A bound method still pickles as ``getattr(instance, name)``."""

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        return (getattr, (self._self_instance, self.__wrapped__.__name__))


class AgentFunctionWrapper(wrapt.FunctionWrapper):
    """wrapt's FunctionWrapper that pickles by reference, as the function it wraps.

    A plain function pickles as "module.qualname"; returning the qualified name
    makes pickle look the wrapper up under the same name and find itself there.
    """

    __bound_function_wrapper__ = _PicklableBoundWrapper

    def __reduce_ex__(self, protocol: SupportsIndex) -> str:
        return str(self.__wrapped__.__qualname__)
