"""A small client for weft's HTTP API, for Python applications.

Standard library only (urllib), so it works in any virtualenv without
installing anything; docs/client.md shows it at work and docs/api.md is
the API it speaks::

    from weft.client import Client

    weft = Client()  # WEFT_ORCHESTRATOR_URL and WEFT_API_TOKEN, or Client(url, token=...)
    task_id = weft.create_task("e2e_linear", "mathematical_sequence", {"even_number": 6})["id"]
    task = weft.wait_for_task(task_id)
    print(task["state"], [s["result"] for s in task["steps"]])

It also starts tasks later (``run_at``, ``delay``), many at once
(``create_tasks``), signals wait steps (``signal_step``), cancels,
retries and lists them, and manages schedules.

Every error answer raises a subclass of :class:`ApiError` carrying the
server's ``code``, the HTTP ``status`` and the whole error ``body``; an
orchestrator that cannot be reached raises :class:`UnreachableError`.
"""

import datetime
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
# Items per batch request unless told otherwise: the server's default WEFT_TASK_BATCH_LIMIT.
_BATCH_SIZE = 1000
# A request without a body (a JSON body may be null: a signal's payload).
_NO_BODY = object()


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

    def create_task(self, namespace, name, context=None, version=None, idempotency_key=None, run_at=None, delay=None):
        """Create a task: ``{"id", "created"}``.

        ``created`` is False when an earlier request with the same
        ``idempotency_key`` made it; a different request under that key
        raises :class:`ConflictError`. A delayed start takes ``run_at`` (an
        aware ``datetime``, or RFC 3339 text with its zone) or ``delay`` (a
        ``timedelta``, or text: ``"90s"``, ``"15m"``, ``"3d"``): the task is
        pending until then.
        """
        body = _task_body(namespace, name, context, version, idempotency_key, run_at, delay)
        status, answer = self._request("POST", "/v1/tasks", body)
        return {"id": answer["id"], "created": status == 201}

    def create_tasks(self, tasks, batch_size=_BATCH_SIZE):
        """Create many tasks, one commit per batch (``POST /v1/tasks/batch``).

        ``tasks`` holds dicts with ``create_task``'s arguments (``namespace``,
        ``name``, ``context``, ``version``, ``idempotency_key``). Answers
        ``{"created", "existing", "failed", "results"}`` with one result per
        item, at its ``index`` in ``tasks``: ``{"index", "id", "outcome"}``, or
        ``{"index", "error": {"code", "message", "path"?}}`` for an item that
        is wrong; the other items are created. A list longer than
        ``batch_size`` goes as several requests; when one fails, the batches
        before it are created: give items idempotency keys and send the same
        list again, and those answer ``"existing"``.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError("create_tasks: batch_size must be an integer >= 1, got %r" % (batch_size,))
        bodies = []
        for i, item in enumerate(tasks):
            if not isinstance(item, dict):
                raise TypeError("create_tasks: tasks[%d] must be a dict of create_task's arguments, got %r" % (i, item))
            unknown = sorted(set(item) - set(_TASK_FIELDS))
            if unknown:
                raise TypeError(
                    "create_tasks: tasks[%d] has unknown key %r; an item takes %s" % (i, unknown[0], ", ".join(_TASK_FIELDS))
                )
            bodies.append(_task_body(*(item.get(k) for k in _TASK_FIELDS)))
        answer = {"created": 0, "existing": 0, "failed": 0, "results": []}
        for start in range(0, len(bodies), batch_size):
            part = self._request("POST", "/v1/tasks/batch", {"tasks": bodies[start : start + batch_size]})[1]
            for count in ("created", "existing", "failed"):
                answer[count] += part[count]
            for result in part["results"]:
                answer["results"].append(dict(result, index=start + result["index"]))
        return answer

    def get_task_by_key(self, idempotency_key):
        """The task created with this idempotency key."""
        return self._request("GET", "/v1/tasks/by-key/" + _quote(idempotency_key))[1]

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

    def retry_task(self, task_id, step=None):
        """Run a failed or cancelled task again from its failed and cancelled steps (or from ``step``): ``{"id", "state", "enqueued"}``."""
        body = {} if step is None else {"step": step}
        return self._request("POST", "/v1/tasks/%s/retry" % _quote(task_id), body)[1]

    def signal_step(self, task_id, step, payload=None):
        """Complete a waiting ``wait`` step: ``payload`` (any JSON value) becomes its result.

        Answers ``{"task_id", "step", "state": "complete"}``. Raises
        :class:`InvalidInputError` naming the payload's field (``body["path"]``)
        when it does not match the step's ``payload_schema``, and
        :class:`ConflictError` when the step is not waiting (the message says why).
        """
        path = "/v1/tasks/%s/steps/%s/signal" % (_quote(task_id), _quote(step))
        return self._request("POST", path, payload)[1]

    def signal_callback(self, callback, payload=None):
        """The same as :meth:`signal_step` through a wait step's ``callback_path`` (or its token alone); needs no API token."""
        token = callback[len("/v1/callbacks/") :] if callback.startswith("/v1/callbacks/") else callback
        return self._request("POST", "/v1/callbacks/" + _quote(token), payload)[1]

    def list_tasks(
        self,
        state=None,
        template=None,
        namespace=None,
        name=None,
        created_after=None,
        created_before=None,
        q=None,
        limit=None,
        cursor=None,
    ):
        """One page of tasks, newest first: ``{"tasks", "next_cursor", "counts"}``.

        ``template`` is ``"NAMESPACE/NAME"`` (or give ``namespace`` and
        ``name``); ``created_after`` and ``created_before`` take aware
        datetimes or ISO 8601 text; pass ``next_cursor`` back as ``cursor``.
        """
        if template is not None:
            namespace, sep, name = template.partition("/")
            if not sep or not namespace or not name or "/" in name:
                raise ValueError(
                    "list_tasks: template %r is not NAMESPACE/NAME, e.g. e2e_linear/mathematical_sequence" % (template,)
                )
        params = [
            ("state", state),
            ("namespace", namespace),
            ("name", name),
            ("created_after", _instant(created_after, "created_after")),
            ("created_before", _instant(created_before, "created_before")),
            ("q", q),
            ("limit", limit),
            ("cursor", cursor),
        ]
        query = urllib.parse.urlencode([(k, str(v)) for k, v in params if v is not None])
        return self._request("GET", "/v1/tasks" + ("?" + query if query else ""))[1]

    def list_schedules(self):
        """Every schedule, by name, with its next firings."""
        return self._request("GET", "/v1/schedules")[1]["schedules"]

    def create_schedule(
        self, name, template, cron, timezone=None, context=None, overlap=None, catch_up=None, paused=None
    ):
        """Create a schedule: ``template`` (``"NAMESPACE/NAME[@VERSION]"``) run on ``cron`` in ``timezone``.

        docs/schedules.md explains the fields. Raises :class:`InvalidInputError`
        naming the field (``cron``, ``timezone``, ``template``, ``context.…``)
        and :class:`ConflictError` when the name is taken.
        """
        body = {"name": name, "template": template, "cron": cron}
        for key, value in (
            ("timezone", timezone),
            ("context", context),
            ("overlap", overlap),
            ("catch_up", catch_up),
            ("paused", paused),
        ):
            if value is not None:
                body[key] = value
        return self._request("POST", "/v1/schedules", body)[1]

    def get_schedule(self, name, events=None):
        """The schedule with its latest ``events`` (audit rows, newest first; default 20)."""
        query = "" if events is None else "?events=%d" % events
        return self._request("GET", "/v1/schedules/" + _quote(name) + query)[1]

    def pause_schedule(self, name):
        """Stop a schedule firing; the schedule (pausing a paused one changes nothing)."""
        return self._request("POST", "/v1/schedules/%s/pause" % _quote(name))[1]

    def resume_schedule(self, name):
        """Fire again from the next time after now (the pause's firings are not caught up); the schedule."""
        return self._request("POST", "/v1/schedules/%s/resume" % _quote(name))[1]

    def delete_schedule(self, name):
        """Delete a schedule (its audit rows stay): ``{"name", "deleted": True}``."""
        return self._request("DELETE", "/v1/schedules/" + _quote(name))[1]

    def _request(self, method, path, body=_NO_BODY, timeout=None):
        headers = {"accept": "application/json"}
        data = None
        if body is not _NO_BODY:
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


# create_task's arguments, which are also a batch item's keys.
_TASK_FIELDS = ("namespace", "name", "context", "version", "idempotency_key", "run_at", "delay")


def _task_body(namespace, name, context=None, version=None, idempotency_key=None, run_at=None, delay=None):
    # A batch item without namespace or name is sent without it: the server answers that item's error.
    body = {k: v for k, v in (("namespace", namespace), ("name", name)) if v is not None}
    if context is not None:
        body["context"] = context
    if version is not None:
        body["version"] = version
    if idempotency_key is not None:
        body["idempotency_key"] = idempotency_key
    if run_at is not None:
        body["run_at"] = _instant(run_at, "run_at")
    if delay is not None:
        if isinstance(delay, datetime.timedelta):
            delay = "%dms" % round(delay.total_seconds() * 1000)
        body["delay"] = delay
    return body


def _instant(value, field):
    """An aware datetime as RFC 3339 text (text passes as it is: the server checks it)."""
    if not isinstance(value, datetime.datetime):
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            "%s: datetime %s has no time zone; pass an aware one, e.g. datetime.now(timezone.utc) + timedelta(hours=1)"
            % (field, value.isoformat())
        )
    return value.isoformat()


def _quote(segment):
    return urllib.parse.quote(str(segment), safe="")
