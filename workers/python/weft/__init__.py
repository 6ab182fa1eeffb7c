"""weft: write workflow step handlers in Python.

A handler receives a :class:`Step` and returns any JSON value::

    import weft

    @weft.step_handler("orders.total")
    def total(step):
        return sum(line["price"] for line in step.inputs["lines"])

Raise :class:`PermanentError` when retrying cannot help; any other exception
is retried with the step's backoff. ``decision([...])`` chooses which
downstream steps run, ``batches([...])`` fans a step out over cursors.
Handlers run inside the weft worker process on one interpreter thread (see
docs/handlers-python-ruby.md).
"""

from ._sdk import (
    Cancelled,
    HandlerNotFound,
    HandlerTimeout,
    InvalidReturn,
    PermanentError,
    Step,
    StepHandler,
    batches,
    decision,
    handlers,
    json_int,
    step_handler,
    to_int,
)

__all__ = [
    "Cancelled",
    "HandlerNotFound",
    "HandlerTimeout",
    "InvalidReturn",
    "PermanentError",
    "Step",
    "StepHandler",
    "batches",
    "decision",
    "handlers",
    "json_int",
    "step_handler",
    "to_int",
]
