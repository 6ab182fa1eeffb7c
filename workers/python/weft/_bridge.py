"""Called by the native bridge only (native/python/python-runtime.cc).

``load_handlers(dirs, setup)`` imports every ``*.py`` under the given directories
and returns the registered keys; ``async_handlers()`` names the ``async def``
ones. Plain handlers run on the bridge's pool of threads through
``invoke(key, payload_json)``, which returns the result as JSON; async ones
run as tasks on the event loop ``serve_loop`` keeps on the interpreter's main
thread. ``describe(exc)`` turns an exception into (kind, class, message,
backtrace, permanent) for the JS side.

Three execution models, chosen per handler (docs/handlers-python-ruby.md):

- ``async def``: a task on the one event loop; thousands can wait at once.
- ``def``: one of the pool's threads (as many as the worker's concurrency);
  the GIL is released while it sleeps or waits for I/O.
- either, when it is short and alone: answered while the worker waits for it
  synchronously (no thread hop back through the event loop of Node).
"""

import asyncio
import importlib.util
import inspect
import json
import os
import sys
import threading
import time
import traceback

from . import _environment, _sdk

_loads = json.loads
_dumps = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode
_THIS_FILE = os.path.abspath(__file__)
_JSON_TYPES = "return dicts, lists, strings, numbers, booleans or None"
_get_ident = threading.get_ident

# ---------------------------------------------------------------------------
# The thread pool (plain def handlers)
# ---------------------------------------------------------------------------

# Thread ident -> Event of each pool thread: set by the bridge when it
# interrupts that thread's handler (timeout, cancel), so the handler's
# time.sleep returns at once and the pending exception is raised from it.
_slot_events = {}
_real_sleep = time.sleep


def _sleep(secs):
    """time.sleep, made interruptible on the pool's threads. CPython raises
    an asynchronous exception only between bytecodes, and only its main
    thread may run signal handlers, so a plain time.sleep on a pool thread
    could not be cut short by a timeout or a cancel. Elsewhere, and for
    anything that is not a positive number (which time.sleep itself
    judges), it is time.sleep."""
    event = _slot_events.get(_get_ident())
    if event is None or secs.__class__ not in (int, float) or not secs > 0:
        return _real_sleep(secs)
    event.wait(secs)


_sleep.__doc__ = time.sleep.__doc__
time.sleep = _sleep


def slot_started(index):
    """A pool thread starts (on that thread)."""
    threading.current_thread().name = f"weft-python-{index}"
    _slot_events[_get_ident()] = threading.Event()


def slot_retired():
    """A pool thread whose handler was declared stuck returned at last and ends (on that thread)."""
    _slot_events.pop(_get_ident(), None)


def interrupted(ident):
    """The bridge raised HandlerTimeout or Cancelled in that thread (called holding the GIL)."""
    event = _slot_events.get(ident)
    if event is not None:
        event.set()


def load_handlers(dirs, setup="{}"):
    """``setup``: JSON from the worker's settings; ``venv`` names the
    virtualenv whose packages the handlers import (_environment.py)."""
    venv = _loads(setup).get("venv")
    if venv:
        _environment.use_virtualenv(venv)
    for d in dirs:
        if not os.path.isdir(d):
            raise FileNotFoundError(f"handlers directory {d!r} does not exist")
        if d not in sys.path:
            sys.path.append(d)  # lets handler files import their own helpers
        for root, subdirs, files in os.walk(d):
            subdirs[:] = sorted(s for s in subdirs if not s.startswith((".", "__")))
            for name in sorted(files):
                if not name.endswith(".py") or name.startswith("_"):
                    continue
                path = os.path.join(root, name)
                rel = os.path.relpath(path, d)[:-3].replace(os.sep, "_")
                modname = f"weft_handlers.{rel}"
                spec = importlib.util.spec_from_file_location(modname, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[modname] = module
                try:
                    spec.loader.exec_module(module)
                except BaseException as exc:
                    sys.modules.pop(modname, None)
                    hint = _environment.missing_module_hint(exc, venv) if isinstance(exc, ModuleNotFoundError) else ""
                    _mark_load_location(exc, path, hint)
                    raise
    return _sdk.handlers()


def async_handlers():
    """The keys of the registered handlers that are coroutine functions."""
    return sorted(key for key, (fn, _origin) in _sdk._registry.items() if _is_async(fn))


def _is_async(fn):
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))


def _mark_load_location(exc, path, hint=""):
    """Note on ``exc`` where loading ``path`` failed, for describe(): the
    file and line of a SyntaxError, else of the deepest frame in a file of
    the handlers (not importlib's), which is where the error was raised;
    ``hint`` ends the message."""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = (exc.filename, exc.lineno)
    else:
        frames = [
            f
            for f in traceback.extract_tb(exc.__traceback__)
            if not f.filename.startswith("<") and os.path.abspath(f.filename) != _THIS_FILE
        ]
        where = (frames[-1].filename, frames[-1].lineno) if frames else (path, None)
    try:
        exc.__weft_load__ = (path, where[0], where[1], hint)
    except AttributeError:  # an exception type without a __dict__: keep it as it is
        pass


def _find_bad(value, path):
    """The first non-JSON value inside ``value``, as (path, type name)."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        if value != value:
            return (path, "float NaN")
        return None if value not in (float("inf"), float("-inf")) else (path, f"float {'-' if value < 0 else ''}Infinity")
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            bad = _find_bad(v, f"{path}[{i}]")
            if bad:
                return bad
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return (f"{path} key {k!r}", f"{type(k).__name__} key")
            bad = _find_bad(v, f"{path}[{k!r}]")
            if bad:
                return bad
        return None
    return (path, type(value).__name__)


def _too_deep_path(root):
    """JSONPath (``$.a[0]``, as weft writes it) of the first container deeper
    than MAX_JSON_DEPTH, walked without recursion."""
    stack = [(root, "$", 0)]
    while stack:
        value, path, depth = stack.pop()
        if not isinstance(value, (dict, list, tuple)):
            continue
        if depth + 1 > _sdk.MAX_JSON_DEPTH:
            return path
        if isinstance(value, dict):
            children = [(v, path + _path_key(str(k))) for k, v in value.items()]
        else:
            children = [(v, f"{path}[{i}]") for i, v in enumerate(value)]
        for v, p in reversed(children):
            stack.append((v, p, depth + 1))
    return "$"


def _path_key(key):
    if key and (key[0].isascii() and (key[0].isalpha() or key[0] in "_$")) and all(c.isascii() and (c.isalnum() or c in "_$") for c in key):
        return f".{key}"
    return f"[{json.dumps(key, ensure_ascii=False)}]"


def _handler(key):
    entry = _sdk._registry.get(key)
    if entry is None:
        known = ", ".join(_sdk.handlers()) or "(none)"
        raise _sdk.HandlerNotFound(f'no Python handler is registered as "{key}"; known handlers: {known}')
    return entry[0]


def invoke(key, payload):
    """Runs a plain handler on the calling pool thread."""
    event = _slot_events.get(_get_ident())
    if event is not None and event.is_set():
        event.clear()  # a wake-up meant for this thread's previous handler
    entry = _sdk._registry.get(key)
    fn = entry[0] if entry is not None else _handler(key)
    return _encode(key, fn(_sdk.Step(_loads(payload))), plain=True)


def _encode(key, result, plain=False):
    try:
        return _dumps(result)
    except RecursionError:
        # Only far past the limit (~1,000 levels); the worker checks every
        # result text against MAX_JSON_DEPTH and says the same thing.
        raise _sdk.InvalidReturn(
            f'handler "{key}" returned a result that nests deeper than {_sdk.MAX_JSON_DEPTH} levels at '
            f"{_too_deep_path(result)}; flatten it (weft keeps every JSON value within {_sdk.MAX_JSON_DEPTH} levels)"
        ) from None
    except (TypeError, ValueError):
        if plain and inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()  # never awaited: no "coroutine was never awaited" warning later
            raise _sdk.InvalidReturn(
                f'handler "{key}" returned an awaitable ({type(result).__name__}) from a plain function; '
                "declare it `async def` so weft runs it on its event loop"
            ) from None
        bad = _find_bad(result, "value")
        where, what = bad if bad else ("value", type(result).__name__)
        article = "an" if what[:1] in "aeiou" else "a"
        detail = "" if where == "value" else f" at {where}"
        raise _sdk.InvalidReturn(
            f'handler "{key}" returned {article} {what}{detail}, which is not JSON; {_JSON_TYPES}'
        ) from None


# ---------------------------------------------------------------------------
# The event loop (async def handlers)
# ---------------------------------------------------------------------------

_loop = None
_tasks = {}  # job id -> its task, until it finishes
_CANCEL_MESSAGES = {
    "cancel": "weft: the task was cancelled",
    "timeout": "weft: the step handler exceeded its timeout",
}


def serve_loop(wake_fd, blocked_ms):
    """Runs the event loop of the async handlers on this (the interpreter's
    main) thread, for good. The bridge writes ``wake_fd`` (an eventfd) when
    it queues async jobs; the loop then takes all of them at once."""
    global _loop
    from . import _native

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    _loop = loop
    loop.add_reader(wake_fd, _drain, wake_fd, _native)
    if async_handlers():
        _watch_loop(loop, blocked_ms / 1000.0, _native)
    loop.run_forever()


def _drain(wake_fd, native):
    try:
        os.read(wake_fd, 8)
    except BlockingIOError:
        pass
    for job_id, key, payload in native.take_async():
        _tasks[job_id] = _loop.create_task(_run_async(job_id, key, payload, native), name=key)


async def _run_async(job_id, key, payload, native):
    try:
        result = await _handler(key)(_sdk.Step(_loads(payload)))
        text = _encode(key, result)
    except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the worker
        native.finish(job_id, False, describe(exc))
    else:
        native.finish(job_id, True, text)
    finally:
        _tasks.pop(job_id, None)


def cancel_async(job_id, reason):
    """Cancels that job's task alone (called from the bridge's interrupt
    thread, holding the GIL): its handler sees asyncio.CancelledError at its
    current await, with a message saying why."""
    loop = _loop
    if loop is not None:
        loop.call_soon_threadsafe(_cancel, job_id, _CANCEL_MESSAGES.get(reason, reason))


def _cancel(job_id, message):
    task = _tasks.get(job_id)
    if task is not None:
        task.cancel(message)


def _watch_loop(loop, limit, native):
    """Reports an async handler that keeps the loop from running longer than
    ``limit`` seconds (it called something blocking): a callback on the loop
    notes every beat, and a thread that wakes as often sees when the beats
    stop and which task is running meanwhile."""
    beat = max(0.005, limit / 2)
    seen = [time.monotonic()]

    def tick():
        seen[0] = time.monotonic()
        loop.call_later(beat, tick)

    def watch():
        reported = None
        while True:
            _real_sleep(beat)
            last = seen[0]
            lag = time.monotonic() - last
            if lag <= limit + beat or reported == last:
                continue
            reported = last
            task = asyncio.current_task(loop)
            native.loop_blocked(task.get_name() if task is not None else "", lag * 1000.0)

    loop.call_soon(tick)
    threading.Thread(target=watch, name="weft-loop-watch", daemon=True).start()


def describe(exc):
    if isinstance(exc, _sdk.InvalidReturn):
        kind = "invalid_return"
    elif isinstance(exc, _sdk.HandlerNotFound):
        kind = "handler_not_found"
    else:
        kind = "raised"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if os.path.abspath(f.filename) != _THIS_FILE]
    backtrace = [f"{f.filename}:{f.lineno}:in {f.name}" for f in reversed(frames)]
    permanent = isinstance(exc, (_sdk.PermanentError, _sdk.InvalidReturn, _sdk.HandlerNotFound))
    return (kind, type(exc).__qualname__, _message(exc), backtrace, permanent)


def _message(exc):
    """str(exc), led by ``file:line:`` when it failed loading a handler file
    (SyntaxError's own text names only the file's base name)."""
    load = getattr(exc, "__weft_load__", None)
    if not load:
        return str(exc)
    path, file, line, hint = load
    text = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    if isinstance(exc, SyntaxError) and exc.text and exc.text.strip():
        text += f": {exc.text.strip()}"
    where = f"{file}:{line}" if line else file
    loading = "" if os.path.abspath(file) == os.path.abspath(path) else f" (while loading {path})"
    return f"{where}: {text}{loading}{hint}"
