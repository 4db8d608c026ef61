"""Assertions shared by the CLI tests."""
from __future__ import annotations


def error_line(result) -> str:
    """The one `Error: ...` line of a failed command (exit status 1, no traceback)."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.output
    return lines[0]
