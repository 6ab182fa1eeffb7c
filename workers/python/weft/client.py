"""A small client for weft's HTTP API, for Python applications.

Standard library only (urllib), so it works in any virtualenv without
installing anything; docs/client.md shows it at work and docs/api.md is
the API it speaks::

    from weft.client import Client

    weft = Client()  # WEFT_ORCHESTRATOR_URL and WEFT_API_TOKEN, or Client(url, token=...)
    task_id = weft.create_task("e2e_linear", "mathematical_sequence", {"even_number": 6})["id"]
    task = weft.wait_for_task(task_id)
    print(task["state"], [s["result"] for s in task["steps"]])

Every error answer raises a subclass of :class:`ApiError` carrying the
server's ``code``, the HTTP ``status`` and the whole error ``body``; an
orchestrator that cannot be reached raises :class:`UnreachableError`.
"""

import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

__all__ = [
    "ApiError",
    "Client",
    "ConflictError",
    "ForbiddenError",
    "InvalidInputError",
    "NotFoundError",
    "RateLimitedError",
    "UnauthorizedError",
    "UnavailableError",
    "UnreachableError",
]

# One long-poll asks the server to hold the request at most this long (s),
# and allows the answer this much longer than that to arrive.
_LONG_POLL_S = 30.0
_LONG_POLL_SLACK_S = 10.0


class ApiError(Exception):
    """The API answered with an error: ``status``, ``code``, ``message``, ``body``."""

    def __init__(self, status, body, request):
        self.status = status
        self.body = body
        self.code = body.get("code")
        self.message = body.get("message")
        self.request = request
        super().__init__(self.message)


class InvalidInputError(ApiError):
    """400 (or 422): the request is wrong; ``body["path"]`` names the field."""


class UnauthorizedError(ApiError):
    """401: no token where one is needed, or an unknown or revoked one."""


class ForbiddenError(ApiError):
    """403: the token lacks the route's scope."""


class NotFoundError(ApiError):
    """404: no such task, step, template or idempotency key."""


class ConflictError(ApiError):
    """409: an idempotency key reused with a different request, or a task whose state forbids the operation."""

    @property
    def task_id(self):
        return self.body.get("task_id")


class RateLimitedError(ApiError):
    """429: too many requests of this kind this minute."""


class UnavailableError(ApiError):
    """503: the orchestrator is starting, stopping or without its database; repeat later."""


class UnreachableError(Exception):
    """The orchestrator could not be reached or did not answer in time."""


_ERRORS = {
    400: InvalidInputError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidInputError,
    429: RateLimitedError,
    503: UnavailableError,
}


class Client:
    """A weft orchestrator's API.

    ``url`` defaults to ``WEFT_ORCHESTRATOR_URL``, ``token`` to
    ``WEFT_API_TOKEN``; ``timeout`` bounds each request (seconds).
    """

    def __init__(self, url=None, token=None, timeout=30.0):
        url = url or os.environ.get("WEFT_ORCHESTRATOR_URL")
        if not url:
            raise ValueError(
                "weft.client.Client needs the orchestrator's URL: "
                "pass Client('http://127.0.0.1:8080') or set WEFT_ORCHESTRATOR_URL"
            )
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(
                "weft.client.Client: url %r is not http(s); "
                "pass the orchestrator's, e.g. http://127.0.0.1:8080" % url
            )
        self.url = url.rstrip("/")
        self.token = token if token is not None else os.environ.get("WEFT_API_TOKEN")
        self.timeout = timeout

    def create_task(self, namespace, name, context=None, version=None, idempotency_key=None):
        """Create a task: ``{"id", "created"}``.

        ``created`` is False when an earlier request with the same
        ``idempotency_key`` made it; a different request under that key
        raises :class:`ConflictError`.
        """
        body = {"namespace": namespace, "name": name}
        if context is not None:
            body["context"] = context
        if version is not None:
            body["version"] = version
        if idempotency_key is not None:
            body["idempotency_key"] = idempotency_key
        status, answer = self._request("POST", "/v1/tasks", body)
        return {"id": answer["id"], "created": status == 201}

    def get_task(self, task_id):
        """The task and every step (state, attempts, result, error, timings)."""
        return self._request("GET", "/v1/tasks/" + _quote(task_id))[1]

    def wait_for_task(self, task_id, timeout=None):
        """Wait until the task ends and return it.

        With ``timeout`` (seconds), return the task as it is once that has
        passed (``task["ended"]`` is False). A restarting orchestrator (503,
        refused connections) is waited out.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = _LONG_POLL_S if deadline is None else max(0.0, deadline - time.monotonic())
            poll = min(left, _LONG_POLL_S)
            path = "/v1/tasks/%s/wait?timeout_ms=%d" % (_quote(task_id), int(poll * 1000))
            try:
                task = self._request("GET", path, timeout=poll + _LONG_POLL_SLACK_S)[1]
                if task["ended"] or left == 0:
                    return task
            except (UnavailableError, UnreachableError):
                if left == 0:
                    raise
                time.sleep(min(1.0, left))

    def cancel_task(self, task_id, reason=None):
        """Cancel a pending or running task: ``{"id", "state", "interrupted"}``."""
        body = {} if reason is None else {"reason": reason}
        return self._request("POST", "/v1/tasks/%s/cancel" % _quote(task_id), body)[1]

    def _request(self, method, path, body=None, timeout=None):
        headers = {"accept": "application/json"}
        data = None
        if body is not None:
            headers["content-type"] = "application/json"
            data = json.dumps(body).encode("utf-8")
        if self.token:
            headers["authorization"] = "Bearer " + self.token
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        what = "%s %s" % (method, path.split("?")[0])
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as res:
                text = res.read().decode("utf-8")
                return res.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as err:
            raise _api_error(err.code, err.read().decode("utf-8", "replace"), what) from None
        except (urllib.error.URLError, socket.timeout, ConnectionError) as err:
            reason = getattr(err, "reason", err)
            raise UnreachableError("%s %s%s: %s" % (method, self.url, path.split("?")[0], reason)) from None


def _api_error(status, text, what):
    try:
        body = json.loads(text)["error"]
        if not isinstance(body, dict) or "code" not in body:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        body = {"code": "http_%d" % status, "message": "HTTP %d without a weft error body: %s" % (status, text[:200])}
    return _ERRORS.get(status, ApiError)(status, body, what)


def _quote(segment):
    return urllib.parse.quote(str(segment), safe="")
