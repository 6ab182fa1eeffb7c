"""The public pieces of the weft Python SDK (re-exported by ``weft``)."""

MAX_SAFE_INTEGER = 2**53 - 1
# weft's one limit on JSON nesting (src/core/json-depth.ts): [] and {} are one level.
MAX_JSON_DEPTH = 64

_registry = {}  # key -> (callable(step) -> value, origin description)


class PermanentError(Exception):
    """Raise to fail the step without retrying it."""


class HandlerTimeout(BaseException):
    """Raised inside a handler that ran past its timeout.

    A BaseException, so ``except Exception`` in a handler does not swallow it.
    """


class Cancelled(BaseException):
    """Raised inside a handler whose task was cancelled while it ran.

    A BaseException, like HandlerTimeout, so ``except Exception`` does not
    swallow it; use ``try/finally`` to clean up. The step's outcome is
    already settled as ``cancelled`` when it arrives.
    """


class InvalidReturn(Exception):
    """A handler returned a value that is not JSON (reported, never retried)."""


class HandlerNotFound(Exception):
    """No handler is registered under the requested key."""


class Step:
    """What a handler gets: one attempt of one step of one task."""

    __slots__ = ("task_id", "step_id", "step_name", "attempt", "context", "inputs", "dependency_results", "batch", "traceparent")

    def __init__(self, data):
        self.task_id = data.get("task_id")
        self.step_id = data.get("step_id")
        self.step_name = data.get("step_name")
        self.attempt = data.get("attempt", 1)
        self.context = data.get("context") or {}
        self.inputs = data.get("inputs") or {}
        self.dependency_results = data.get("dependency_results") or {}
        self.batch = data.get("batch")
        # W3C trace context of this run when weft traces (docs/tracing.md), else None:
        # pass it to your own tracer to continue the task's trace.
        self.traceparent = data.get("traceparent")

    def __repr__(self):
        return f"Step({self.step_name!r}, attempt={self.attempt})"


class StepHandler:
    """Optional base class: subclass it, implement ``call(self, step)`` and
    decorate the class with ``@weft.step_handler("key")``. One instance is
    created at registration and reused for every call."""

    def call(self, step):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.call(step) is not implemented")


def step_handler(key):
    """Register a function ``f(step)`` or a class with ``call(self, step)``
    (or ``__call__``) under ``key``."""
    if not isinstance(key, str) or not key:
        raise TypeError(f"weft.step_handler needs a non-empty string key, got {key!r}")

    def register(target):
        if isinstance(target, type):
            instance = target()
            fn = getattr(instance, "call", None) or instance
            origin = f"class {target.__module__}.{target.__qualname__}"
        elif callable(target):
            fn = target
            origin = f"function {getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
        else:
            raise TypeError(f"weft.step_handler({key!r}) decorates a function or class, got {type(target).__name__}")
        if key in _registry and _registry[key][1] != origin:
            raise ValueError(f"handler key {key!r} is registered twice: by {_registry[key][1]} and by {origin}")
        _registry[key] = (fn, origin)
        return target

    return register


def handlers():
    """The registered handler keys, sorted."""
    return sorted(_registry)


def decision(steps):
    """Return from a decision step: run only these downstream steps (by name)."""
    steps = list(steps)
    for s in steps:
        if not isinstance(s, str):
            raise TypeError(f"weft.decision takes step names (strings), got {type(s).__name__}")
    return {"$weft": "decision", "steps": steps}


def batches(cursors):
    """Return from a batchable step: run the batch worker once per cursor."""
    return {"$weft": "batches", "cursors": list(cursors)}


def json_int(n):
    """An integer as JSON can carry it exactly: a number up to 2**53-1, else a decimal string."""
    n = int(n)
    return n if -MAX_SAFE_INTEGER <= n <= MAX_SAFE_INTEGER else str(n)


def to_int(value):
    """Read an integer result written by any language: a JSON number or a decimal string."""
    if isinstance(value, bool):
        raise TypeError("expected an integer or a decimal string, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value, 10)
    raise TypeError(f"expected an integer or a decimal string, got {type(value).__name__} {value!r}")
