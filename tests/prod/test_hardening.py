"""Each of these was tried against the app; each must end with a clear message, the app serving, nothing lost.

A read-only model store and a full disk are real here: the test runs the app
(or the CLI) in a private mount namespace (``unshare -m``) where the models
folder is a read-only bind mount or a tiny tmpfs. Root ignores file modes, so
``chmod`` would prove nothing. Without ``unshare`` those tests are skipped
(and fail in CI, which runs as root on the same kind of machine).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dashboard.background import HealingCache
from ml.config import BUNDLED_DATA_FILE, PROJECT_ROOT, get_settings
from ml.errors import ArtifactError
from ml.serving.registry import METADATA_FILE, MODEL_FILE, ModelStore
from ml.serving.scoring import load_scoring_models
from ml.serving.training import TrainConfig, train

PYTHON = sys.executable


def can_unshare() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    return probe.returncode == 0


needs_namespace = pytest.mark.skipif(
    not can_unshare() and not os.environ.get("CI"), reason="needs unshare -m (a private mount namespace)"
)


def env_for(root: Path, models: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLICKSTREAM_", "REDIS_URL"))}
    env.update(
        CLICKSTREAM_MODELS_DIR=str(models),
        CLICKSTREAM_CACHE_DIR=str(root / "cache"),
        CLICKSTREAM_DATASETS_DIR=str(root / "datasets"),
        CLICKSTREAM_PROFILES_DIR=str(root / "profiles"),
        CLICKSTREAM_USERS_FILE=str(root / "users.json"),
        CLICKSTREAM_SECRET_KEY_FILE=str(root / "secret_key"),
        PYTHONPATH=str(PROJECT_ROOT),
        **extra,
    )
    return env


def in_namespace(mount: str, script: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``script`` (Python) after ``mount`` (shell) in a private mount namespace."""
    command = f'set -e; {mount}; exec {PYTHON} -c "$0"'
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", command, textwrap.dedent(script)],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def store_with_runs(tmp_path_factory, small_clicks) -> Path:
    """A model store with quick runs of three models of the bundled dataset."""
    root = tmp_path_factory.mktemp("store")
    registry = ModelStore(root).registry("bundled")
    config = TrainConfig(quick=True, models=("logreg", "regression:linear", "kmeans"))
    train(small_clicks, registry, config, source="small sample", data_hash="small")
    return root


# ---------------------------------------------------------------- models/ read-only
APP_ON_READ_ONLY_STORE = """
import json
from dashboard.app_factory import create_app, render_tab
from dashboard.tabs import TABS
from dashboard.tabs.leaderboard.training_panel import run_training_job
from ml.config import get_settings

settings = get_settings()
app = create_app(settings)
client = app.server.test_client()
out = {"index": client.get("/").status_code, "layout": client.get("/_dash-layout").status_code}
out["tabs"] = {t.TAB_ID: type(render_tab(app.context, t.TAB_ID, "bundled")[0]).__name__ for t in TABS}
message, _ = run_training_job(settings, lambda _: None, 3, ["classification:logreg"], "quick")
out["train"] = str(message.children)
print(json.dumps(out))
"""


@needs_namespace
def test_a_read_only_model_store_renders_every_page_and_train_says_why_it_cannot_save(store_with_runs, tmp_path):
    before = sorted(p.name for p in store_with_runs.rglob("*") if p.is_dir())
    mount = f"mount --bind {store_with_runs} {store_with_runs}; mount -o remount,bind,ro {store_with_runs}"
    env = env_for(tmp_path, store_with_runs, CLICKSTREAM_DATA=str(BUNDLED_DATA_FILE))
    result = in_namespace(mount, APP_ON_READ_ONLY_STORE, env)
    assert result.returncode == 0, result.stderr[-3000:]
    out = last_json(result.stdout)
    assert out["index"] == 200 and out["layout"] == 200  # today: "Error loading layout"
    assert all(kind for kind in out["tabs"].values())
    assert "read-only" in out["train"] and "cannot be saved" in out["train"]
    assert str(store_with_runs) not in out["train"]  # no server path in the UI
    assert sorted(p.name for p in store_with_runs.rglob("*") if p.is_dir()) == before


# ---------------------------------------------------------------- disk full while training
TRAIN_ON_FULL_DISK = """
import json
from dashboard.tabs.leaderboard.training_panel import run_training_job
from ml.config import get_settings
from ml.serving.registry import ModelStore

settings = get_settings()
message, _ = run_training_job(settings, lambda _: None, 3, ["classification:logreg", "classification:forest",
                              "regression:forest", "clustering:kmeans"], "quick")
runs = ModelStore(settings.models_dir).registry("bundled").runs()  # the app trains the data file as "bundled"
print(json.dumps({"message": str(message.children), "runs": len(runs)}))
"""


@needs_namespace
def test_a_full_disk_while_training_saves_the_job_whole_or_not_at_all_with_one_message(tmp_path, small_clicks):
    from tests.ml.factories import lowercase_form

    data = tmp_path / "small.csv"
    lowercase_form(small_clicks).to_csv(data, index=False)
    models = tmp_path / "models"
    models.mkdir()
    # 160 kB: the logistic regression's run (about 60 kB) fits, the random forests' do not.
    mount = f"mount -t tmpfs -o size=160k tmpfs {models}"
    result = in_namespace(mount, TRAIN_ON_FULL_DISK, env_for(tmp_path, models, CLICKSTREAM_DATA=str(data)))
    assert result.returncode == 0, result.stderr[-3000:]
    out = last_json(result.stdout)
    assert (
        "disk holding the model store is full" in out["message"] and "nothing from this job was saved" in out["message"]
    )
    assert out["runs"] == 0  # not 1 of 4: the job is saved whole or not at all
    assert result.stderr.count("Traceback") == 0  # one log line, not one traceback per model
    assert result.stderr.count("no space left") == 1


# ---------------------------------------------------------------- the cache folder deleted while running
def _write_in_child(cache: HealingCache, key: str, value: str) -> None:
    cache.set(key, value)


def test_a_new_cache_folder_is_made_without_a_warning(tmp_path, caplog):
    HealingCache(tmp_path / "new").set("key", 1)
    assert "deleted" not in caplog.text


def test_a_deleted_cache_folder_is_made_again_for_the_app_and_its_job_processes(tmp_path):
    folder = tmp_path / "cache" / "background"
    cache = HealingCache(folder)
    cache.set("before", 1)
    shutil.rmtree(tmp_path / "cache")
    # A background job is a forked process (as Dash's DiskcacheManager starts it): it must reach
    # the same cache as the web process that polls it.
    child = multiprocessing.get_context("fork").Process(target=_write_in_child, args=(cache, "result", "done"))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert cache.get("result") == "done"
    assert folder.is_dir()
    cache.set("after", 2)
    assert HealingCache(folder).get("after") == 2  # one database on disk, not an unlinked one


def test_the_app_keeps_serving_and_its_job_cache_works_after_the_folder_is_deleted(tmp_path, bundled):
    from dashboard.app_factory import create_app

    settings = get_settings().with_overrides(
        cache_dir=tmp_path / "cache",
        models_dir=tmp_path / "models",
        datasets_dir=tmp_path / "datasets",
        users_file=tmp_path / "users.json",
        secret_key_file=tmp_path / "secret_key",
    )
    app = create_app(settings)
    manager = app.context.background_manager
    shutil.rmtree(settings.cache_dir)
    manager.handle.set("job-result", {"ok": True})
    assert manager.result_ready("job-result")
    assert (settings.cache_dir / "background").is_dir()
    assert app.server.test_client().get("/_dash-layout").status_code == 200


# ---------------------------------------------------------------- a damaged newest run
def _second_run(store: Path, small_clicks, tmp_path) -> tuple:
    root = tmp_path / "store"
    shutil.copytree(store, root)
    registry = ModelStore(root).registry("bundled")
    older = registry.latest("classification", "logreg")
    config = TrainConfig(quick=True, models=("logreg",))
    train(small_clicks, registry, config, source="small sample", data_hash="small")
    newest = registry.latest("classification", "logreg")
    assert newest.run_id > older.run_id
    return registry, older, newest


def test_a_truncated_newest_model_file_is_named_and_the_previous_run_is_used(store_with_runs, small_clicks, tmp_path):
    registry, older, newest = _second_run(store_with_runs, small_clicks, tmp_path)
    model = newest.path / MODEL_FILE
    model.write_bytes(model.read_bytes()[:200])  # truncated, as a full disk or a killed copy leaves it
    loaded = registry.load_intact(registry.champion("classification"))
    assert loaded.info.run_id == older.run_id
    assert len(loaded.skipped) == 1 and newest.run_id in loaded.skipped[0] and MODEL_FILE in loaded.skipped[0]
    assert str(tmp_path) not in loaded.skipped[0]  # named without the server's folders
    assert load_scoring_models(registry).classifier.info.run_id == older.run_id  # scoring falls back too
    with pytest.raises(ArtifactError):  # asked for by its id, the damaged run is refused, not replaced
        load_scoring_models(registry, newest.run_id)


def test_an_invalid_newest_metadata_file_is_skipped_for_the_previous_run(store_with_runs, small_clicks, tmp_path):
    registry, older, newest = _second_run(store_with_runs, small_clicks, tmp_path)
    (newest.path / METADATA_FILE).write_text('{"task": "classification", "window": ')  # cut short
    in_use = {r.model: r for r in registry.latest_per_model("classification")}
    assert in_use["logreg"].run_id == older.run_id
    assert registry.champion("classification").run_id == older.run_id
    listed = {r.run_id: r for r in registry.runs()}
    assert listed[newest.run_id].metadata is None and METADATA_FILE in listed[newest.run_id].error


def test_the_app_falls_back_to_the_previous_run_of_a_damaged_newest_one(store_with_runs, small_clicks, tmp_path):
    from ml.serving.registry_cache import RegistryCache

    registry, older, newest = _second_run(store_with_runs, small_clicks, tmp_path)
    (newest.path / MODEL_FILE).write_bytes(b"")
    assert RegistryCache.of(registry).loaded_champion("classification").info.run_id == older.run_id


# ---------------------------------------------------------------- path traversal
@pytest.mark.parametrize(
    "url",
    [
        "/_dash-component-suites/dash/../../app.py",
        "/_dash-component-suites/dash/..%2f..%2f..%2fetc%2fpasswd",
        "/_dash-component-suites/dash/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/_dash-component-suites/dash/..%5c..%5capp.py",
        "/_dash-component-suites/dash/deps/x%00.js",
        "/_dash-component-suites/no_such_package/x.js",
    ],
)
def test_a_path_traversal_under_component_suites_answers_404(traversal_client, url):
    response = traversal_client.get(url)
    assert response.status_code == 404
    assert b"root:" not in response.data and b"create_app" not in response.data


@pytest.fixture(scope="module")
def traversal_client(tmp_path_factory, bundled):
    from dashboard.app_factory import create_app

    root = tmp_path_factory.mktemp("traversal")
    settings = get_settings().with_overrides(
        cache_dir=root / "cache",
        models_dir=root / "models",
        datasets_dir=root / "datasets",
        users_file=root / "users.json",
        secret_key_file=root / "secret_key",
    )
    return create_app(settings).server.test_client()


def test_component_scripts_are_still_served(traversal_client):
    layout = traversal_client.get("/").get_data(as_text=True)
    script = next(part.split('"')[0] for part in layout.split('src="')[1:] if "_dash-component-suites" in part)
    assert traversal_client.get(script).status_code == 200


# ---------------------------------------------------------------- the command line
def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "-m", "ml", *args], capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=300, check=False
    )


@pytest.fixture
def click_file(tmp_path, uci_head_bytes) -> Path:
    path = tmp_path / "clicks.csv"
    path.write_bytes(uci_head_bytes)
    return path


def test_cli_output_that_is_a_folder_is_refused_with_exit_2(click_file, tmp_path):
    result = run_cli("score", str(click_file), "-o", str(tmp_path))
    assert result.returncode == 2
    assert "is a folder" in result.stderr and "Traceback" not in result.stderr


def test_cli_output_equal_to_the_input_is_refused_and_the_input_kept(click_file, tmp_path):
    original = click_file.read_bytes()
    link = tmp_path / "same.csv"
    link.symlink_to(click_file)
    for output in (click_file, link, tmp_path / "." / click_file.name):
        result = run_cli("score", str(click_file), "-o", str(output))
        assert result.returncode == 2, result.stderr
        assert "is the input file" in result.stderr and "Traceback" not in result.stderr
    assert click_file.read_bytes() == original


def test_cli_output_in_a_missing_folder_is_refused_with_exit_2(click_file, tmp_path):
    result = run_cli("score", str(click_file), "-o", str(tmp_path / "no" / "such" / "scores.csv"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


@needs_namespace
def test_cli_output_in_an_unwritable_folder_is_refused_with_exit_2(click_file, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    script = f"import sys; from ml.cli import main; sys.exit(main(['score', '{click_file}', '-o', '{folder}/s.csv']))"
    mount = f"mount --bind {folder} {folder}; mount -o remount,bind,ro {folder}"
    result = in_namespace(mount, script, env_for(tmp_path, tmp_path / "models"))
    assert result.returncode == 2, result.stderr
    assert "not writable" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["score", "x.csv", "-o", "y.csv"], ["evaluate"], ["train", "--quick"]])
def test_a_bad_window_variable_is_a_clear_message_with_exit_2(command):
    env = {**os.environ, "CLICKSTREAM_WINDOW": "abc"}
    result = run_cli(*command, env=env)
    assert result.returncode == 2
    assert "CLICKSTREAM_WINDOW" in result.stderr and "abc" in result.stderr
    assert "Traceback" not in result.stderr
