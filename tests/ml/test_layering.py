"""``ml`` stands alone: importing it (and running its command line) never loads the UI."""

from __future__ import annotations

import subprocess
import sys

from ml.config import PROJECT_ROOT

UI_MODULES = ("dash", "dash_bootstrap_components", "plotly", "dashboard", "dash_ag_grid")


def test_importing_every_ml_module_does_not_load_dash_or_plotly():
    script = (
        "import importlib, pkgutil, sys, ml\n"
        "for m in pkgutil.iter_modules(ml.__path__):\n"
        "    if m.name != '__main__': importlib.import_module('ml.' + m.name)\n"
        f"loaded = [n for n in {UI_MODULES!r} if n in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
