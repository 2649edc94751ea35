"""Login and roles, through Flask's test client on a real app with a temporary users file.

Callback requests are built as the browser builds them, from ``app.callback_map``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import diskcache
import pytest

from dashboard import ids
from dashboard.app_factory import create_app
from dashboard.auth import CannotServe, check_can_serve
from dashboard.auth.policy import POLICY, callback_role, required_role, tab_role
from dashboard.uploads import UploadStore
from ml.config import PROJECT_ROOT
from ml.serving.locking import running_job
from ml.serving.registry import Registry
from ml.serving.users import ADMIN, ANALYST, VIEWER, UserStore
from tests.e2e.conftest import start_app, stop_app

PASSWORD = "a long enough password"
UPDATE = "/_dash-update-component"
VIEWER_TABS = ["kpi", "eda", "segments", "products", "whatif"]


@pytest.fixture(scope="module")
def auth_settings(tmp_path_factory, dash_settings):
    root = tmp_path_factory.mktemp("auth")
    store = UserStore(root / "users.json")
    for name, role in [("vera", VIEWER), ("ann", ANALYST), ("adam", ADMIN), ("rita", VIEWER), ("gone", VIEWER)]:
        store.add(name, role, PASSWORD)
    return dash_settings.with_overrides(
        models_dir=root / "models",
        cache_dir=root / "cache",
        users_file=store.path,
        secret_key_file=root / "secret_key",
        secure_cookies=True,
    )


@pytest.fixture(scope="module")
def auth_app(auth_settings, prepared):
    app = create_app(auth_settings, prepared)
    app.server.test_client().get("/_favicon.ico")  # Dash completes its callback map on the first request
    return app


def csrf_from(client) -> str:
    with client.session_transaction() as session:
        return session["csrf_token"]


def login(client, name: str, password: str = PASSWORD, next_path: str | None = None):
    client.get("/login")
    form = {"username": name, "password": password, "csrf_token": csrf_from(client)}
    if next_path is not None:
        form["next"] = next_path
    return client.post("/login", data=form)


@pytest.fixture
def client(auth_app):
    return auth_app.server.test_client()


def logged_in(auth_app, name: str):
    client = auth_app.server.test_client()
    assert login(client, name).status_code == 302
    return client


# ---------------------------------------------------------------- callback requests, as the renderer sends them
def callback_key(app, *, input_id: str | None = None, output_id: str | None = None) -> str:
    for key, callback in app.callback_map.items():
        if input_id and input_id in [d["id"] for d in callback["inputs"]]:
            return key
        if output_id and key.lstrip(".").startswith(f"{output_id}."):
            return key
    raise AssertionError(f"no callback with input {input_id} / output {output_id}")


def _outputs(key: str) -> list[dict]:
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    return [dict(zip(("id", "property"), part.split("@")[0].rsplit(".", 1), strict=True)) for part in parts]


def callback_body(app, key: str, values: dict[str, object] | None = None) -> dict:
    """The JSON the browser posts for the callback ``key``; ``values`` by ``"id.prop"``."""
    values = values or {}
    callback = app.callback_map[key]

    def deps(items):
        return [{**d, "value": values.get(f"{d['id']}.{d['property']}")} for d in items]

    outputs = _outputs(key)
    inputs = deps(callback["inputs"])
    return {
        "output": key,
        "outputs": outputs if key.startswith("..") else outputs[0],
        "inputs": inputs,
        "state": deps(callback["state"]),
        "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"],
    }


def post_callback(client, body: dict, query: str = "", **headers):
    return client.post(UPDATE + query, data=json.dumps(body), content_type="application/json", headers=headers)


def layout_tabs(client) -> list[str]:
    response = client.get("/_dash-layout")
    assert response.status_code == 200
    return re.findall(r'"tab_id":\s*"([a-z]+)"', response.get_data(as_text=True))


# ---------------------------------------------------------------- the policy table
@pytest.mark.parametrize(
    ("component_id", "role"),
    [
        (ids.TRAIN_BUTTON, ANALYST),
        (ids.TRAIN_PANEL, VIEWER),  # the container the shell shows or hides on every tab switch
        (ids.LEADERBOARD_SUMMARY, ANALYST),
        (ids.SCORING_UPLOAD, ANALYST),
        ("data-upload-button", ANALYST),
        ("upload-store", ANALYST),
        ("admin-users-grid", ADMIN),
        (ids.KPI_CARDS, VIEWER),
        (ids.APP_MODELS_STORE, VIEWER),
        (ids.whatif_feature("clicks"), VIEWER),
        ({"type": "scoring-row-button", "index": 3}, ANALYST),
        ('{"name":["ALL"],"type":"leaderboard-x"}', ANALYST),
    ],
)
def test_the_policy_table_maps_each_id_to_a_role(component_id, role):
    assert required_role(component_id) == role


def test_tabs_need_what_their_components_need():
    assert [t for t in ("kpi", "eda", "segments", "products", "whatif") if tab_role(t) != VIEWER] == []
    assert tab_role("leaderboard") == tab_role("scoring") == ANALYST
    assert set(POLICY.values()) <= {VIEWER, ANALYST, ADMIN}


def test_a_callback_needs_the_highest_role_of_all_its_components(auth_app):
    train = callback_key(auth_app, input_id=ids.TRAIN_BUTTON)
    assert callback_role(callback_body(auth_app, train), auth_app.callback_map) == ANALYST
    # a forged body that names only viewer components still needs what the registered callback needs
    forged = {"output": train, "outputs": [{"id": ids.KPI_CARDS, "property": "children"}], "inputs": []}
    assert callback_role(forged, auth_app.callback_map) == ANALYST
    summary = callback_key(auth_app, output_id=ids.FILTER_SUMMARY)
    assert callback_role(callback_body(auth_app, summary), auth_app.callback_map) == VIEWER


# ---------------------------------------------------------------- not logged in
def test_without_login_pages_redirect_to_the_login_and_callbacks_get_401(auth_app, client):
    page = client.get("/?tab=eda")
    assert page.status_code == 302 and page.headers["Location"] == "/login?next=%2F%3Ftab%3Deda"
    assert client.get("/_dash-layout").status_code == 401
    assert client.get("/_dash-dependencies").status_code == 401
    summary = callback_key(auth_app, output_id=ids.FILTER_SUMMARY)
    refused = post_callback(client, callback_body(auth_app, summary))
    assert refused.status_code == 401 and refused.json["error"] == "login-required"
    train = callback_key(auth_app, input_id=ids.TRAIN_BUTTON)
    assert post_callback(client, callback_body(auth_app, train), "?cacheKey=x&job=1").status_code == 401
    assert client.get("/assets/00-bootswatch-cerulean-5.3.8.min.css").status_code == 200  # the login page's style


def test_the_login_page_is_a_plain_accessible_form_on_the_vendored_css(client):
    page = client.get("/login")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert '<label for="auth-username"' in html and '<label for="auth-password"' in html
    assert 'autocomplete="username"' in html and 'autocomplete="current-password"' in html
    assert 'name="csrf_token"' in html
    links = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert links and all(link.startswith("/assets/") for link in links), links


# ---------------------------------------------------------------- logging in
def test_a_viewer_logs_in_and_sees_only_the_viewer_tabs(auth_app, client):
    response = login(client, "vera")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    assert layout_tabs(client) == VIEWER_TABS
    layout = client.get("/_dash-layout").get_data(as_text=True)
    assert ids.TRAIN_BUTTON not in layout  # no Train panel at all
    assert "vera" in layout and "Log out" in layout
    summary = callback_key(auth_app, output_id=ids.FILTER_SUMMARY)
    assert post_callback(client, callback_body(auth_app, summary)).status_code == 200


def test_an_analyst_sees_every_tab_and_passes_the_check_for_analyst_callbacks(auth_app):
    client = logged_in(auth_app, "ann")
    assert layout_tabs(client) == ["kpi", "eda", "segments", "products", "leaderboard", "whatif", "scoring"]
    assert ids.TRAIN_BUTTON in client.get("/_dash-layout").get_data(as_text=True)
    key = callback_key(auth_app, output_id=ids.LEADERBOARD_SUMMARY)
    body = callback_body(auth_app, key, {f"{ids.APP_MODELS_STORE}.data": "", f"{ids.LEADERBOARD_HISTORY}.value": False})
    response = post_callback(client, body)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert ids.LEADERBOARD_SUMMARY in response.get_data(as_text=True)


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(client):
    wrong = login(client, "vera", "not the password")
    unknown = login(client, "nobody-here", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Incorrect user name or password." in wrong.get_data(as_text=True)
    assert "Incorrect user name or password." in unknown.get_data(as_text=True)


def test_the_sixth_wrong_password_in_a_row_is_refused_with_429(client):
    for _ in range(5):
        assert login(client, "rita", "wrong password!").status_code == 401
    sixth = login(client, "rita", "wrong password!")
    assert sixth.status_code == 429
    assert re.search(r"Try again in \d+ s\.", sixth.get_data(as_text=True))
    assert int(sixth.headers["Retry-After"]) > 0
    assert login(client, "rita").status_code == 429  # even the right password waits
    assert login(client, "vera").status_code == 302  # another user from the same address does not


@pytest.mark.parametrize(
    "target", ["//evil.example", "//evil.example/path", "https://evil.example/", "/\\evil.example", "javascript:x"]
)
def test_next_is_not_followed_to_another_site(client, target):
    response = login(client, "vera", next_path=target)
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_next_is_followed_to_a_path_on_this_site(client):
    response = login(client, "vera", next_path="/?tab=eda")
    assert response.headers["Location"] == "/?tab=eda"


def test_a_login_without_the_session_form_token_is_refused(client):
    client.get("/login")
    response = client.post("/login", data={"username": "vera", "password": PASSWORD, "csrf_token": "guessed"})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_the_session_cookie_is_httponly_samesite_lax_and_secure(client):
    cookie = login(client, "vera").headers["Set-Cookie"]
    assert cookie.startswith("clickstream_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


# ---------------------------------------------------------------- roles on the server
def test_a_viewers_forged_train_request_gets_403_and_starts_no_job(auth_app, auth_settings):
    client = logged_in(auth_app, "vera")
    background = diskcache.Cache(str(auth_settings.cache_dir / "background"))
    entries_before = len(background)
    key = callback_key(auth_app, input_id=ids.TRAIN_BUTTON)
    body = callback_body(
        auth_app,
        key,
        {
            f"{ids.TRAIN_BUTTON}.n_clicks": 1,
            f"{ids.TRAIN_WINDOW}.value": 3,
            f"{ids.TRAIN_MODELS}.value": ["classification:logreg"],
            f"{ids.TRAIN_MODE}.value": "quick",
        },
    )
    refused = post_callback(client, body)
    assert refused.status_code == 403
    assert refused.json == {
        "error": "forbidden",
        "message": "This needs the analyst role; you are logged in as viewer.",
    }
    # a poll for the job's result, and a body that names only viewer components, are refused the same way
    assert post_callback(client, body, "?cacheKey=abc&job=123").status_code == 403
    assert post_callback(client, {**body, "outputs": [], "inputs": [], "state": []}).status_code == 403
    assert running_job(auth_settings.models_dir) is None
    assert Registry(auth_settings.models_dir).runs() == []
    assert len(background) == entries_before


def test_a_viewers_forged_upload_gets_403_and_nothing_is_stored(auth_app, auth_settings):
    client = logged_in(auth_app, "vera")
    key = next(k for k in auth_app.callback_map if ids.SCORING_UPLOAD_STORE in k and ids.SCORING_UPLOAD in k)
    csv = "year,month,day,order,country,session_id\n2008,4,1,1,29,1\n"
    contents = "data:text/csv;base64," + base64.b64encode(csv.encode()).decode()
    body = callback_body(
        auth_app, key, {f"{ids.SCORING_UPLOAD}.contents": contents, f"{ids.SCORING_UPLOAD}.filename": "clicks.csv"}
    )
    assert post_callback(client, body).status_code == 403
    uploads = UploadStore.for_settings(auth_settings).root
    assert not uploads.exists() or not any(uploads.iterdir())


def test_a_viewer_asking_for_an_analyst_tab_gets_the_first_tab_instead(auth_app):
    client = logged_in(auth_app, "vera")
    key = callback_key(auth_app, output_id=ids.APP_TAB_CONTENT)
    values = {f"{ids.APP_TABS}.active_tab": "leaderboard", f"{ids.APP_DATASET_STORE}.data": "bundled"}
    response = post_callback(client, callback_body(auth_app, key, values))
    assert response.status_code == 200
    content = response.get_data(as_text=True)
    assert "leaderboard-" not in content and ids.KPI_CARDS in content


def test_a_post_from_another_site_is_refused(auth_app):
    client = logged_in(auth_app, "vera")
    body = callback_body(auth_app, callback_key(auth_app, output_id=ids.FILTER_SUMMARY))
    assert post_callback(client, body, Origin="https://evil.example").status_code == 403
    assert post_callback(client, body, Referer="https://evil.example/page").status_code == 403
    assert post_callback(client, body, Origin="http://localhost").status_code == 200


# ---------------------------------------------------------------- ending sessions
def test_logout_ends_the_session(auth_app):
    client = logged_in(auth_app, "vera")
    assert client.post("/logout", data={"csrf_token": "wrong"}).status_code == 400
    assert client.get("/").status_code == 200  # a forged logout does nothing
    response = client.post("/logout", data={"csrf_token": csrf_from(client)})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/").status_code == 302
    body = callback_body(auth_app, callback_key(auth_app, output_id=ids.FILTER_SUMMARY))
    assert post_callback(client, body).status_code == 401


def test_a_removed_user_is_logged_out_at_the_next_request(auth_app, auth_settings):
    client = logged_in(auth_app, "gone")
    assert client.get("/").status_code == 200
    UserStore(auth_settings.users_file).remove("gone")
    assert client.get("/").status_code == 302


# ---------------------------------------------------------------- without users
def test_without_users_the_app_answers_this_machine_only(app):
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    assert layout_tabs(client) == ["kpi", "eda", "segments", "products", "leaderboard", "whatif", "scoring"]
    remote = client.get("/", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert remote.status_code == 503 and "python -m ml users add NAME --role admin" in remote.json["message"]


def test_serving_beyond_loopback_needs_a_user(tmp_path: Path, dash_settings):
    no_users = dash_settings.with_overrides(users_file=tmp_path / "users.json")
    for host in ("127.0.0.1", "::1", "localhost"):
        check_can_serve(no_users, host)
    with pytest.raises(CannotServe, match="python -m ml users add NAME --role admin"):
        check_can_serve(no_users.with_overrides(host="0.0.0.0"))
    UserStore(no_users.users_file).add("adam", ADMIN, PASSWORD)
    check_can_serve(no_users, "0.0.0.0")


def test_app_py_refuses_to_bind_beyond_loopback_without_users(tmp_path: Path):
    env = {"HOST": "0.0.0.0", "PORT": "8999", "CLICKSTREAM_USERS_FILE": str(tmp_path / "users.json")}
    done = subprocess.run(
        [sys.executable, "app.py"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "refusing to serve on 0.0.0.0" in done.stderr and "python -m ml users add NAME --role admin" in done.stderr
    assert "Traceback" not in done.stderr


def test_app_py_serves_on_loopback_without_users(tmp_path: Path):
    server = start_app(tmp_path)  # HOST=127.0.0.1, no users file: waits until / answers 200
    try:
        assert server.process.poll() is None
    finally:
        stop_app(server)
