"""weft: write workflow step handlers in Python.

A handler receives a :class:`Step` and returns any JSON value::

    import weft

    @weft.step_handler("orders.total")
    def total(step):
        return sum(line["price"] for line in step.inputs["lines"])

An ``async def`` handler runs on the worker's asyncio event loop, a plain
``def`` one on a pool of threads; either way many run at once::

    @weft.step_handler("orders.fetch")
    async def fetch(step):
        await asyncio.sleep(0.1)          # never time.sleep inside async def
        return {"ok": True}

Raise :class:`PermanentError` when retrying cannot help; any other exception
is retried with the step's backoff. ``decision([...])`` chooses which
downstream steps run, ``batches([...])`` fans a step out over cursors.
Handlers run inside the weft worker process (see
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
