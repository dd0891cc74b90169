"""What the pipeline asks of a stage that keeps state between blocks.

Each stateful stage gives its state as a value (:meth:`Stage.state`: a small
dict of numbers, tuples, copied lists and arrays; nothing in it is shared
with the stage, so later blocks do not change it) and takes one back
(:meth:`Stage.restore`), as VQF's ``getState``/``setState`` do. The pipeline
uses it to run a block's samples again from where the block began (a
re-zero after drift inside a block, ``Pipeline._monitor``); the tests check
that ``state()`` -> ``restore()`` -> going on gives exactly what never
stopping gives (tests/core/test_stages.py).

Each stage's ``update(...)`` takes what that stage needs (see the table in
docs/architecture.md, "The stages"), so the protocol declares only what
every stateful stage shares.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Stage", "StageState", "fields_of", "plain_value", "set_fields"]

#: a stage's state as a value: field name -> value (copies, never the stage's own lists or arrays)
StageState = dict[str, Any]


@runtime_checkable
class Stage(Protocol):
    """A stage whose state can be taken and given back (see the module)."""

    def state(self) -> StageState:
        """The stage's state now, as a value."""
        ...

    def restore(self, state: StageState) -> None:
        """Go on from ``state`` (taken from this stage or another built with the same settings)."""
        ...


def _copy(value: Any) -> Any:
    """A copy of one field's value: lists, dicts and arrays are copied (one
    level: what they hold is frozen records, numbers and strings); anything
    else is a value already."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, set):
        return set(value)
    return value


def fields_of(obj: object, names: Iterable[str]) -> StageState:
    """``{name: a copy of obj.name}`` for a stage's :meth:`Stage.state`."""
    return {k: _copy(getattr(obj, k)) for k in names}


def set_fields(obj: object, state: StageState, names: Iterable[str]) -> None:
    """The fields ``names`` of ``obj`` set from copies of ``state``'s (for :meth:`Stage.restore`)."""
    for k in names:
        setattr(obj, k, _copy(state[k]))


def plain_value(value: Any) -> Any:
    """A copy of plain data, all the way down: dicts, lists, tuples and sets
    of numbers, strings, arrays (copied) and frozen records. Anything else
    (a mutable object: an event, a calibration) is a TypeError: its owner
    gives its own value (``Event``: ``dataclasses.replace``; ``Calibration.copy``)."""
    if value is None or isinstance(value, (bool, int, float, str, bytes, np.generic)):
        return value
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: plain_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain_value(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return type(value)(value)  # of numbers and strings
    params = getattr(type(value), "__dataclass_params__", None)
    if params is not None and params.frozen and not isinstance(value, type):
        return value  # a frozen record (limits, a range of motion, a mounting)
    raise TypeError(f"not a plain value: {type(value).__name__}")
