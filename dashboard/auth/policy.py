"""Which role each part of the app needs: one table keyed by component-ID prefix.

Component IDs are ``<tab>-<element>-<kind>`` (``dashboard/ids.py``), so a prefix
names a tab, or a part of the shell such as the Train panel. The longest
matching prefix wins; an ID that no prefix matches needs the lowest role.

A callback needs the highest role that any of its components needs: its
outputs, inputs and states, both as the server registered the callback and as
the request names them, so a forged request cannot borrow a harmless
callback's IDs. A tab needs what its components (``<tab>-...``) need.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

from dashboard import ids
from ml.serving.users import ADMIN, ANALYST, ROLES, VIEWER

POLICY: dict[str, str] = {
    "train-": ANALYST,  # the Train panel: training jobs
    ids.TRAIN_PANEL: VIEWER,  # its container, which the shell shows or hides on every tab switch (empty for viewers)
    "leaderboard-": ANALYST,  # the model leaderboard
    "scoring-": ANALYST,  # uploads, scoring jobs and their results
    "data-": ANALYST,  # adding, mapping and deleting datasets
    ids.DATA_SELECT: VIEWER,  # every role may switch the dataset it looks at
    ids.DATA_INFO: VIEWER,  # and read what the dataset in use is
    "upload": ANALYST,  # any other upload
    "admin-": ADMIN,  # user management
    "products-": VIEWER,  # the Products tab: product table, recommendations, paths (read-only views)
}
DEFAULT_ROLE = VIEWER
# POSTs to any endpoint other than Dash's callback endpoint and the login pages
# (Dash's MCP or callback-API endpoints, if ever switched on) skip the per-ID check, so need the top role.
OTHER_POST_ROLE = ADMIN


def highest(roles: Iterator[str] | list[str]) -> str:
    return max(roles, key=ROLES.index, default=DEFAULT_ROLE)


def _names(component_id: object) -> list[str]:
    """The name(s) a component ID is matched by: itself, or a pattern-matching ID's ``type``."""
    if isinstance(component_id, str) and component_id.startswith("{"):
        try:
            component_id = json.loads(component_id)
        except ValueError:
            return [component_id]
    if isinstance(component_id, dict):
        kind = component_id.get("type")
        return [kind] if isinstance(kind, str) else [v for v in component_id.values() if isinstance(v, str)]
    return [component_id] if isinstance(component_id, str) else []


def required_role(component_id: object) -> str:
    """The role a component needs (a string ID, a pattern-matching dict, or its JSON text)."""
    roles = []
    for name in _names(component_id):
        matches = [prefix for prefix in POLICY if name.startswith(prefix)]
        roles.append(POLICY[max(matches, key=len)] if matches else DEFAULT_ROLE)
    return highest(roles)


def tab_role(tab_id: str) -> str:
    return required_role(f"{tab_id}-")


def _prop_id_components(text: object) -> list[str]:
    """Component IDs in ``"id.prop"`` or Dash's multi-output key ``"..a.x...b.y.."``."""
    if not isinstance(text, str):
        return []
    parts = text[2:-2].split("...") if text.startswith("..") and text.endswith("..") else [text]
    return [part.rsplit(".", 1)[0] for part in parts]


def _dependency_ids(value: object) -> Iterator[object]:
    """IDs in a request's ``outputs``/``inputs``/``state``: dicts with an ``id``, nested in lists for ALL patterns."""
    if isinstance(value, list):
        for item in value:
            yield from _dependency_ids(item)
    elif isinstance(value, dict) and "id" in value:
        yield value["id"]


def callback_components(body: Mapping, callback_map: Mapping) -> list[object]:
    """Every component a callback request involves, from the request and from the registered callback."""
    output = body.get("output")
    found: list[object] = _prop_id_components(output)
    registered = callback_map.get(output) if isinstance(output, str) else None
    if registered:
        found += [dep["id"] for dep in (*registered.get("inputs", ()), *registered.get("state", ()))]
    for field in ("outputs", "inputs", "state"):
        found += list(_dependency_ids(body.get(field)))
    for prop_id in body.get("changedPropIds") or ():
        found += _prop_id_components(prop_id)
    return found


def callback_role(body: Mapping, callback_map: Mapping) -> str:
    """The role a ``/_dash-update-component`` request needs."""
    return highest([required_role(c) for c in callback_components(body, callback_map)])
