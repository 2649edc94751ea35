"""``ml`` stands alone and its subpackages import only downwards.

The layers, lowest first: the shared modules (``config``, ``errors``,
``tasks``), ``ml.data``, ``ml.features``, ``ml.models``, ``ml.serving``, then
the command line. A module may import its own layer and the layers below it,
never above; ``ml`` never imports the UI.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from ml.config import PROJECT_ROOT

UI_MODULES = ("dash", "dash_bootstrap_components", "plotly", "dashboard", "dash_ag_grid", "flask", "flask_login")
ML_ROOT = PROJECT_ROOT / "ml"
LAYERS = {"config": 0, "errors": 0, "tasks": 0, "data": 1, "features": 2, "models": 3, "serving": 4}
TOP_LAYER = 5  # ml/cli.py, ml/__main__.py and anything else at the top


def layer_of(module: str) -> int:
    """Layer of a dotted ``ml...`` module name."""
    parts = module.split(".")
    return LAYERS.get(parts[1], TOP_LAYER) if len(parts) > 1 else TOP_LAYER


def ml_imports(path: Path) -> list[tuple[int, str]]:
    """Every ``ml`` module a file imports (at any depth of the file), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "ml"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ml":
            if node.module == "ml":  # from ml import data -> ml.data
                found += [(node.lineno, f"ml.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(PROJECT_ROOT).with_suffix("").parts).removesuffix(".__init__")


ML_FILES = sorted(ML_ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", ML_FILES, ids=lambda p: str(p.relative_to(ML_ROOT)))
def test_modules_import_only_their_own_layer_and_below(path: Path):
    own = layer_of(module_name(path))
    upward = [f"line {line}: {name}" for line, name in ml_imports(path) if layer_of(name) > own]
    assert not upward, f"{module_name(path)} (layer {own}) imports a higher layer: {upward}"


def test_the_layer_check_sees_an_upward_import(tmp_path: Path):
    bad = tmp_path / "bad.py"
    bad.write_text("from ml.serving.registry import Registry\nimport ml.models.zoo\n", encoding="utf-8")
    names = [name for _, name in ml_imports(bad)]
    assert names == ["ml.serving.registry", "ml.models.zoo"]
    assert max(layer_of(n) for n in names) > layer_of("ml.data.schema")


def _run(script: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_importing_every_ml_module_does_not_load_dash_or_plotly():
    script = (
        "import importlib, pkgutil, sys, ml\n"
        "for m in pkgutil.walk_packages(ml.__path__, 'ml.'):\n"
        "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        f"print(','.join(n for n in {UI_MODULES!r} if n in sys.modules))\n"
    )
    assert _run(script) == ""


def test_listing_the_registry_does_not_import_model_libraries():
    script = (
        "import sys\n"
        "from ml.serving.registry import Registry\n"
        "Registry('.').runs()\n"
        "print(','.join(n for n in ('xgboost', 'sklearn', 'imblearn') if n in sys.modules))\n"
    )
    assert _run(script) == ""
