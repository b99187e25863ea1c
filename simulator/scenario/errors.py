"""The one exception family users see: bad input, reported as ``FILE:LINE:COL: message``.

The CLI prints ``str(error)`` for each problem and exits with :data:`EXIT_BAD_INPUT`; nothing
else in the package is allowed to reach the user as a traceback for something they wrote.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_BAD_INPUT = 2


@dataclass(frozen=True)
class Problem:
    """One problem in one input: where it is (file, 1-based line and column) and what is wrong."""

    file: str
    message: str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.col or 1}: {self.message}"


class ScenarioError(ValueError):
    """Bad input: one or more :class:`Problem` lines. ``str()`` gives one line per problem."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    @classmethod
    def single(
        cls, file: str, message: str, line: int | None = None, col: int | None = None
    ) -> ScenarioError:
        return cls([Problem(file, message, line, col)])
