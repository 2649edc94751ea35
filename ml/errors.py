"""The project's exception types.

``ValidationError`` is the one error bad input raises: it carries every
problem found, each naming its column and a few example rows, so a user can fix
a file in one pass. ``ArtifactError`` names a missing or corrupt saved model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

MAX_EXAMPLE_ROWS = 5


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file.

    ``rows`` are 1-based data-row numbers (the header is not counted), at most
    a few examples; ``count`` is how many rows have the problem in total.
    """

    message: str
    column: str | None = None
    rows: tuple[int, ...] = ()
    count: int = 0
    # Every 0-based row position the problem covers, so exactly these rows can be dropped on request.
    positions: np.ndarray | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        where = f"column '{self.column}': " if self.column else ""
        text = f"{where}{self.message}"
        if self.count:
            plural = "s" if self.count != 1 else ""
            text += f" ({self.count:,} row{plural}"
            if self.rows:
                shown = ", ".join(str(r) for r in self.rows)
                text += f"; e.g. row{'s' if len(self.rows) > 1 else ''} {shown}"
            text += ")"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "column": self.column,
            "message": self.message,
            "rows": list(self.rows),
            "count": self.count,
            "text": self.describe(),
        }


def invalid_row_mask(problems: Iterable[Problem], n_rows: int) -> np.ndarray:
    """Rows any of ``problems`` covers (a boolean per row)."""
    mask = np.zeros(n_rows, dtype=bool)
    for problem in problems:
        if problem.positions is not None:
            mask[problem.positions] = True
    return mask


def is_row_problem(problem: Problem) -> bool:
    """True when dropping rows can fix the problem (it names rows), false for file-level ones."""
    return problem.positions is not None and len(problem.positions) > 0


def example_rows(positions: Iterable[int]) -> tuple[int, ...]:
    """Turn 0-based row positions into a few 1-based data-row numbers."""
    out: list[int] = []
    for pos in positions:
        out.append(int(pos) + 1)
        if len(out) == MAX_EXAMPLE_ROWS:
            break
    return tuple(out)


class ClickstreamError(Exception):
    """Base class for errors the product reports to users as messages, not tracebacks."""


class ValidationError(ClickstreamError):
    """An input file has problems; ``problems`` lists all of them."""

    def __init__(self, problems: Sequence[Problem], source: str | None = None):
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.source = source
        super().__init__(self.report())

    def __reduce__(self) -> tuple:
        # Rebuilt from its problems, not its message, when it crosses a process boundary (a parse worker).
        return (type(self), (self.problems, self.source))

    def report(self) -> str:
        name = f"'{self.source}'" if self.source else "the input"
        n = len(self.problems)
        lines = [f"{name} cannot be used: {n} problem{'s' if n != 1 else ''} found"]
        lines += [f"  - {p.describe()}" for p in self.problems]
        if any(p.rows for p in self.problems):
            lines.append("Row numbers count data rows from 1, not counting the header.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "problems": [p.to_dict() for p in self.problems]}


class ArtifactError(ClickstreamError):
    """A saved model run is missing or cannot be read."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)  # the full path, for the server's log
        self.reason = reason
        super().__init__(f"model artifact {self.shown}: {reason}")

    @property
    def shown(self) -> str:
        """The path from the task folder on (``classification/xgboost/<run>/model.joblib``): no server folders."""
        return artifact_name(self.path)


ARTIFACT_NAME_PARTS = 4  # task / model / run id / file


def artifact_name(path: object) -> str:
    """A saved run's file named without the server's folders, for messages users see."""
    parts = str(path).replace("\\", "/").split("/")
    return "/".join(parts[-ARTIFACT_NAME_PARTS:])


class ServerBusy(ClickstreamError):
    """Too many files are being read at once; the user should try again shortly."""


class NoModelError(ClickstreamError):
    """No trained model exists for a task yet."""
