"""Called by the native bridge only (native/python/python-runtime.cc).

``load_handlers(dirs)`` imports every ``*.py`` under the given directories
and returns the registered keys; ``invoke(key, payload_json)`` runs one step
and returns its result as JSON; ``describe(exc)`` turns an exception into
(kind, class, message, backtrace, permanent) for the JS side.
"""

import importlib.util
import json
import os
import signal
import sys
import traceback

from . import _sdk

_loads = json.loads
_dumps = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode
_THIS_FILE = os.path.abspath(__file__)
_JSON_TYPES = "return dicts, lists, strings, numbers, booleans or None"


# The signal the bridge sends the interpreter thread after it raised an
# interrupt (timeout, cancel) in it. A real-time signal nothing else in a weft
# worker uses (Node, libuv and Ruby leave them alone).
WAKE_SIGNAL = signal.SIGRTMIN + 6


def _wake(signum, frame):
    """Does nothing, and that is the point: the signal makes a blocking call
    (time.sleep, a socket read) return EINTR, Python then runs this handler,
    and running it lets the pending async exception (HandlerTimeout,
    Cancelled) be raised, out of the blocking call. Without a pending one
    (a signal that came late) the call just goes on."""


def install_wake_signal():
    """Called once by the bridge, on the interpreter's main thread."""
    signal.signal(WAKE_SIGNAL, _wake)
    return int(WAKE_SIGNAL)


def load_handlers(dirs):
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
                    _mark_load_location(exc, path)
                    raise
    return _sdk.handlers()


def _mark_load_location(exc, path):
    """Note on ``exc`` where loading ``path`` failed, for describe(): the
    file and line of a SyntaxError, else of the deepest frame in a file of
    the handlers (not importlib's), which is where the error was raised."""
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
        exc.__weft_load__ = (path, where[0], where[1])
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


def invoke(key, payload):
    entry = _sdk._registry.get(key)
    if entry is None:
        known = ", ".join(_sdk.handlers()) or "(none)"
        raise _sdk.HandlerNotFound(f'no Python handler is registered as "{key}"; known handlers: {known}')
    step = _sdk.Step(_loads(payload))
    result = entry[0](step)
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
        bad = _find_bad(result, "value")
        where, what = bad if bad else ("value", type(result).__name__)
        article = "an" if what[:1] in "aeiou" else "a"
        detail = "" if where == "value" else f" at {where}"
        raise _sdk.InvalidReturn(
            f'handler "{key}" returned {article} {what}{detail}, which is not JSON; {_JSON_TYPES}'
        ) from None


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
    path, file, line = load
    text = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    if isinstance(exc, SyntaxError) and exc.text and exc.text.strip():
        text += f": {exc.text.strip()}"
    where = f"{file}:{line}" if line else file
    loading = "" if os.path.abspath(file) == os.path.abspath(path) else f" (while loading {path})"
    return f"{where}: {text}{loading}"
