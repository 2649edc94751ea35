"""The browser-side refusal of an oversized or wrong-type upload, for every upload box (assets/60-upload-guard.js)."""

from __future__ import annotations

import json

from dash import Input, Output, State


def register_upload_guard(
    app, upload_id: str, note_id: str, store_id: str, hint: str, report_id: str | None = None
) -> None:
    """Explain in ``note_id`` why the browser sent nothing, and clear ``store_id`` (and ``report_id``'s children)."""
    states = [State(upload_id, "max_size"), State(upload_id, "accept"), State(note_id, "id"), State(store_id, "id")]
    if report_id:
        states.append(State(report_id, "id"))
    app.clientside_callback(
        "function(uploadId, maxBytes, accept, noteId, storeId, reportId) {"
        f" return window.clickstreamUploadGuard(uploadId, maxBytes, accept, noteId, storeId, reportId || null,"
        f" {json.dumps(hint)}); }}",
        Output(note_id, "children"),
        Input(upload_id, "id"),
        *states,
    )
