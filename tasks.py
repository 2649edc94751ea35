#!/usr/bin/env python3
"""Quick start: set up a project-local virtual environment and run the app or the tests.

    python3 tasks.py app    # install into .venv (first time) and start the app on the bundled data
    python3 tasks.py serve  # the same, on the production server (gunicorn, several workers; see gunicorn.conf.py)
    python3 tasks.py test   # install the test tools into .venv (first time) and run the test suite

Uses only the standard library, so it works on a fresh machine with Python 3.11+.
The environment is reused; it is updated when a requirements file changes.
Extra arguments after ``test`` go to pytest (e.g. ``python3 tasks.py test -k loading``), after
``serve`` to gunicorn (e.g. ``python3 tasks.py serve --workers 4``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
REQUIREMENTS = {"app": ROOT / "requirements.txt", "test": ROOT / "requirements-dev.txt"}
ENVIRONMENT = {"app": "app", "serve": "app", "test": "test"}  # which requirements each command needs


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def requirements_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted({path, ROOT / "requirements.txt"}):
        digest.update(file.read_bytes())
    return digest.hexdigest()


def ensure_environment(kind: str) -> Path:
    """Create .venv if needed and install the requirements for ``kind`` if they changed."""
    if sys.version_info < (3, 11):
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    if not venv_python().exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    requirements = REQUIREMENTS[kind]
    stamp = VENV / f".installed-{kind}"
    digest = requirements_digest(requirements)
    if not stamp.exists() or stamp.read_text() != digest:
        print(f"installing {requirements.name} into {VENV} (first run takes a few minutes)", flush=True)
        python = str(venv_python())
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "-r", str(requirements)], check=True)
        stamp.write_text(digest)
    return venv_python()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ENVIRONMENT:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    python = str(ensure_environment(ENVIRONMENT[command]))
    args = {
        "app": [python, str(ROOT / "app.py"), *rest],
        "serve": [python, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), *rest],
        "test": [python, "-m", "pytest", *rest],
    }[command]
    return subprocess.call(args, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
