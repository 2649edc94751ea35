"""Upload limits on the server: bombs, parses at once, worker processes, quotas, expiry, chunked bodies.

Uploads are real bytes sent as the browser sends them (a base64 data URL);
the chunked-body test talks HTTP to a running app on a free port.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from dashboard import parse_pool
from dashboard.app_factory import create_app, max_request_bytes
from dashboard.uploads import UploadStore, check_upload, fix_hints
from ml.config import ENV_UPLOAD_QUOTA_MB, MEGABYTE, PROJECT_ROOT, InputLimits, get_settings
from ml.data.limits import parse_gate
from ml.errors import ServerBusy, ValidationError
from ml.serving.registry import Registry
from tests.processes import process_running

UCI_HEADER = "year;month;day;order;country;session ID;page 1 (main category);page 2 (clothing model);colour;location;model photography;price;price 2;page"  # noqa: E501


def uci_csv(n: int) -> bytes:
    rows = [f"2008;4;1;{i % 5 + 1};29;{i // 5 + 1};1;A{i % 7};1;5;1;28;2;1" for i in range(n)]
    return ("\n".join([UCI_HEADER, *rows]) + "\n").encode()


def data_url(data: bytes) -> str:
    return "data:application/gzip;base64," + base64.b64encode(data).decode("ascii")


@pytest.fixture
def settings(dash_settings, tmp_path: Path):
    return dash_settings.with_overrides(
        cache_dir=tmp_path / "cache", models_dir=tmp_path / "no-models", max_upload_bytes=MEGABYTE
    )


def uploads_left(settings) -> list[Path]:
    root = settings.cache_dir / "uploads"
    return sorted(root.iterdir()) if root.is_dir() else []


def test_a_gzip_bomb_upload_is_refused_and_nothing_is_kept(settings) -> None:
    bomb = gzip.compress(uci_csv(20) + b"\n" * 200_000_000, compresslevel=9)
    assert len(bomb) < 300_000  # 200 MB of text
    with pytest.raises(ValidationError) as error:
        check_upload(settings, Registry(settings.models_dir), data_url(bomb), "bomb.csv.gz")
    assert "unpacks to more than the limit of 1 MB" in error.value.report()
    assert uploads_left(settings) == []


def test_an_upload_is_parsed_in_a_worker_process(settings) -> None:
    checked = check_upload(settings, Registry(settings.models_dir), data_url(gzip.compress(uci_csv(50))), "ok.csv.gz")
    assert len(checked.loaded.events) == 50 and checked.loaded.n_sessions == 10
    pool = parse_pool._pools[settings.limits.max_parses]
    workers = [p.pid for p in pool._processes.values()]
    assert workers and os.getpid() not in workers


def result_files(settings) -> list[Path]:
    folder = settings.cache_dir / parse_pool.PARSE_RESULTS_DIRNAME
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_a_worker_hands_the_events_back_through_a_file_that_is_then_removed(settings) -> None:
    checked = check_upload(settings, Registry(settings.models_dir), data_url(gzip.compress(uci_csv(50))), "ok.csv.gz")
    assert len(checked.loaded.events) == 50 and (settings.cache_dir / parse_pool.PARSE_RESULTS_DIRNAME).is_dir()
    with pytest.raises(ValidationError):
        check_upload(settings, Registry(settings.models_dir), data_url(b"not,a,click,file\n1,2,3,4\n"), "bad.csv")
    assert result_files(settings) == []


def test_without_a_result_file_the_events_come_back_through_the_pipe(settings) -> None:
    settings.cache_dir.mkdir(parents=True)
    (settings.cache_dir / parse_pool.PARSE_RESULTS_DIRNAME).write_text("a file where the folder would be")
    checked = check_upload(settings, Registry(settings.models_dir), data_url(uci_csv(30)), "ok.csv")
    assert len(checked.loaded.events) == 30


def test_a_result_file_that_cannot_be_written_returns_the_events(tmp_path: Path) -> None:
    loaded = parse_pool._load_into(tmp_path / "no-such-folder" / "events.pickle", uci_csv(20), max_bytes=MEGABYTE)
    assert loaded is not None and len(loaded.events) == 20
    written = tmp_path / "events.pickle"
    assert parse_pool._load_into(written, uci_csv(20), max_bytes=MEGABYTE) is None
    assert parse_pool._read_result(written).events.equals(loaded.events)


def test_result_files_left_by_a_stopped_server_are_removed(settings) -> None:
    folder = settings.cache_dir / parse_pool.PARSE_RESULTS_DIRNAME
    folder.mkdir(parents=True)
    stale, recent = folder / "events-old.pickle", folder / "events-new.pickle"
    for path in (stale, recent):
        path.write_bytes(b"left over")
    an_hour_ago = time.time() - parse_pool.STALE_RESULT_S - 60
    os.utime(stale, (an_hour_ago, an_hour_ago))
    check_upload(settings, Registry(settings.models_dir), data_url(uci_csv(20)), "ok.csv")
    assert result_files(settings) == [recent]  # another parse's file, maybe still being written, stays


def test_a_parse_worker_that_dies_is_reported_and_replaced(settings) -> None:
    registry = Registry(settings.models_dir)
    check_upload(settings, registry, data_url(uci_csv(20)), "first.csv")
    for process in list(parse_pool._pools[settings.limits.max_parses]._processes.values()):
        os.kill(process.pid, signal.SIGKILL)
        process.join(10)
    outcome: list[str] = []
    for _ in range(2):  # the broken pool is noticed on submit or on the result, then replaced
        try:
            outcome.append(str(len(check_upload(settings, registry, data_url(uci_csv(20)), "next.csv").loaded.events)))
        except ValidationError as exc:
            outcome.append(exc.report())
    assert outcome[-1] == "20", outcome
    assert all(o == "20" or "worker process reading the file stopped" in o for o in outcome)
    assert len(uploads_left(settings)) == outcome.count("20") + 1


HOLD_A_PLACE = """
import sys, time
from ml.data.limits import parse_gate
with parse_gate(1, sys.argv[1]).slot(5.0):
    print("holding", flush=True)
    sys.stdin.readline()
"""


def test_more_uploads_than_parse_places_on_the_machine_hear_the_server_is_busy(settings) -> None:
    """The bound is the machine's: another process (another web worker) parsing takes the only place."""
    busy = settings.with_overrides(limits=InputLimits(max_parses=1, parse_wait_s=0.3))
    places = busy.cache_dir / parse_pool.PARSE_SLOTS_DIRNAME
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_PLACE, str(places)],
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout.readline().strip() == "holding"
        with pytest.raises(ValidationError) as error:
            check_upload(busy, Registry(busy.models_dir), data_url(uci_csv(20)), "waiting.csv")
        assert "busy reading 1 other file" in error.value.report()
        assert fix_hints(error.value.problems) == ["Wait a minute and upload the file again."]
        assert uploads_left(busy) == []
        other.kill()  # a worker that dies gives its place back at once (the kernel drops its lock)
        other.wait(10)
        assert (
            len(check_upload(busy, Registry(busy.models_dir), data_url(uci_csv(20)), "later.csv").loaded.events) == 20
        )
    finally:
        other.kill()
        other.wait(10)


def test_two_places_let_two_parses_run_and_a_third_wait(tmp_path: Path) -> None:
    gate = parse_gate(2, tmp_path / "places")
    with gate.slot(1.0), gate.slot(1.0):
        started = time.monotonic()
        with pytest.raises(ServerBusy, match="busy reading 2 other file"), gate.slot(0.2):
            pass
        assert time.monotonic() - started >= 0.2  # it waited before saying so
    with gate.slot(0.1):  # both places are free again
        pass


def test_with_an_unusable_places_folder_parses_are_bounded_per_process(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with (
        parse_gate(1, blocked / "places").slot(0.1),  # logged, and the process-wide gate stands in
        pytest.raises(ServerBusy, match="busy reading 1 other file"),
        parse_gate(1).slot(0.1),
    ):
        pass


def test_the_upload_quota_counts_per_owner_and_frees_up_as_uploads_expire(tmp_path: Path) -> None:
    store = UploadStore(tmp_path / "uploads", quota_bytes=250_000)
    first = store.save(b"a" * 100_000, "one.csv", owner="ana")
    store.save(b"b" * 100_000, "two.csv", owner="ana")
    with pytest.raises(ValidationError) as error:
        store.save(b"c" * 100_000, "three.csv", owner="ana")
    message = error.value.report()
    assert "would pass your upload quota of 244.1 KB" in message and "CLICKSTREAM_UPLOAD_QUOTA_MB" in message
    assert fix_hints(error.value.problems)[0].startswith("Wait for your older uploads to expire")
    store.save(b"d" * 100_000, "other.csv", owner="ben")  # another user's quota is their own
    assert store.usage("ana") >= 200_000 and store.usage("ben") >= 100_000
    old = time.time() - store.max_age_seconds - 60
    os.utime(store.root / first, (old, old))
    store.save(b"c" * 100_000, "three.csv", owner="ana")  # the expired one was swept on save
    assert not (store.root / first).exists()


def test_uploads_at_once_cannot_both_pass_the_quota(tmp_path: Path) -> None:
    """The quota check and the write are one step per owner: of many uploads at once only what fits is kept."""
    store = UploadStore(tmp_path / "uploads", quota_bytes=350_000)
    outcomes: list[str] = []

    def upload(i: int) -> None:
        try:
            store.save(b"z" * 100_000, f"{i}.csv", owner="ana")
            outcomes.append("kept")
        except ValidationError:
            outcomes.append("refused")

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("kept") == 3 and outcomes.count("refused") == 5
    assert store.usage("ana") <= 350_000


def test_expired_folders_are_swept_on_every_save(tmp_path: Path) -> None:
    store = UploadStore(tmp_path / "uploads")
    stale = [store.save(b"x" * 1000, f"{i}.csv") for i in range(3)]
    old = time.time() - store.max_age_seconds - 1
    for upload_id in stale[:2]:
        os.utime(store.root / upload_id, (old, old))
    fresh = store.save(b"y", "new.csv")
    assert sorted(p.name for p in store.root.iterdir()) == sorted([stale[2], fresh])


def test_the_quota_comes_from_the_settings(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_UPLOAD_QUOTA_MB, "3")
    assert get_settings().upload_quota_bytes == 3 * MEGABYTE
    assert UploadStore.for_settings(settings.with_overrides(upload_quota_bytes=5)).quota_bytes == 5


# ----------------------------------------------------------------- request bodies, sized and chunked
@pytest.fixture
def served(prepared, settings):
    """The app on a free loopback port, served by Werkzeug's threaded server (which decodes chunked bodies)."""
    app = create_app(settings, prepared)
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port, max_request_bytes(settings)
    server.shutdown()
    thread.join(10)


def post(port: int, body: bytes, *, chunked: bool) -> int:
    """POST a callback body, sized or chunked; the status, or 0 if the server closed the connection first."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    try:
        if chunked:
            pieces = (body[i : i + 65536] for i in range(0, len(body), 65536))
            connection.request("POST", "/_dash-update-component", body=pieces, headers=headers, encode_chunked=True)
        else:
            connection.request("POST", "/_dash-update-component", body=body, headers=headers)
        return connection.getresponse().status
    except (BrokenPipeError, ConnectionResetError):
        try:
            return connection.getresponse().status
        except (http.client.HTTPException, OSError):
            return 0
    finally:
        connection.close()


def callback_body(padding: int) -> bytes:
    return json.dumps(
        {"output": "x.children", "outputs": {}, "inputs": [], "changedPropIds": [], "pad": "a" * padding}
    ).encode()


def test_chunked_bodies_are_bounded_like_sized_ones(served) -> None:
    port, limit = served
    too_big = callback_body(limit + MEGABYTE)
    sized = post(port, too_big, chunked=False)
    chunked = post(port, too_big, chunked=True)
    assert sized == 413
    assert chunked in (413, 0), chunked  # refused: answered 413, or cut off once past the limit
    overhead = len(callback_body(0))
    just_over = post(port, callback_body(limit - overhead + 10), chunked=True)
    assert just_over in (413, 0), just_over  # not cut to the limit and passed on as if whole
    assert post(port, callback_body(limit - overhead - 1), chunked=True) not in (413, 0)  # just under: read
    assert post(port, callback_body(1000), chunked=True) not in (413, 0)  # a small chunked body is read
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/_dash-layout")
    assert connection.getresponse().status == 200  # still serving
    connection.close()


GUNICORN_APP = """
from pathlib import Path

from dashboard.app_factory import create_app
from ml.config import MEGABYTE, get_settings
from ml.data.loading import load_events
from ml.features.prepared import prepare

root = Path(__file__).parent
settings = get_settings().with_overrides(
    cache_dir=root / "cache", models_dir=root / "models", users_file=root / "users.json",
    secret_key_file=root / "secret", datasets_dir=root / "datasets", profiles_dir=root / "profiles",
    max_upload_bytes=MEGABYTE,
)
server = create_app(settings, prepare(load_events(root / "clicks.csv"), display_name="small")).server
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_gunicorn_bounds_chunked_bodies_too(tmp_path: Path, settings) -> None:
    """The production server decodes chunked bodies itself (wsgi.input_terminated): the same limit holds."""
    if shutil.which("gunicorn", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("gunicorn is not installed")
    (tmp_path / "clicks.csv").write_bytes(uci_csv(200))
    (tmp_path / "small_app.py").write_text(GUNICORN_APP, encoding="utf-8")
    port = free_port()
    command = [str(Path(sys.executable).parent / "gunicorn"), "-w", "1", "-b", f"127.0.0.1:{port}", "small_app:server"]
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}:{PROJECT_ROOT}"}
    server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=5).request("GET", "/_dash-layout")
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()
                time.sleep(0.5)
        limit = max_request_bytes(settings)
        overhead = len(callback_body(0))
        assert post(port, callback_body(limit + MEGABYTE), chunked=True) in (413, 0)
        assert post(port, callback_body(limit - overhead + 10), chunked=True) in (413, 0)
        assert post(port, callback_body(1000), chunked=True) not in (413, 0)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/_dash-layout")
        assert connection.getresponse().status == 200  # the worker still serves
    finally:
        server.terminate()
        server.wait(30)


SERVER_THAT_DIES = """
import base64, os, sys
from pathlib import Path
from dashboard import parse_pool
from ml.config import get_settings
settings = get_settings().with_overrides(cache_dir=Path(sys.argv[1]))
parse_pool.parse_upload(sys.argv[2].encode(), "tiny.csv", settings)
print(" ".join(str(p.pid) for p in parse_pool._pools[settings.limits.max_parses]._processes.values()), flush=True)
os.kill(os.getpid(), 9)  # killed without a clean shutdown, as the out-of-memory killer does
"""


def test_parse_workers_leave_when_their_server_is_killed(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SERVER_THAT_DIES, str(tmp_path / "cache"), uci_csv(20).decode()],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    workers = [int(pid) for pid in done.stdout.split()]
    assert workers, done.stderr
    deadline = time.monotonic() + 30
    alive = workers
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pid for pid in workers if process_running(pid)]
    assert not alive, f"parse workers {alive} outlived their server"
