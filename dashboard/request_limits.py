"""No request body larger than the limit is read, whether it states its size or comes chunked.

Flask answers 413 for a ``Content-Length`` over ``MAX_CONTENT_LENGTH`` before
reading. A chunked body (``Transfer-Encoding: chunked``, no length) is read
through Werkzeug's ``LimitedStream``, which stops at the limit but hands the
first ``limit`` bytes on as if they were the whole body. The hook here reads
such a body once (cached for the callback), and if it fills the limit, answers
413 too, instead of passing a truncated body on.
"""

from __future__ import annotations

from flask import Flask, request

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def bound_request_bodies(server: Flask, max_bytes: int) -> None:
    """Set the request-size limit and refuse chunked bodies that reach it (register before other hooks)."""
    server.config["MAX_CONTENT_LENGTH"] = max_bytes

    @server.before_request
    def refuse_long_chunked_body() -> None:
        if request.method not in BODY_METHODS or request.content_length is not None:
            return
        body = request.get_data(cache=True)  # at most max_bytes: the stream stops there
        if len(body) >= max_bytes:
            request.stream.read(1)  # past the limit: Werkzeug raises RequestEntityTooLarge (413)
