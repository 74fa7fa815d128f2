"""Docker's plain tables: columns padded to the widest cell, three spaces apart."""

from __future__ import annotations

from rootless.cli.printable import escape_controls


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Cells are escaped: a tab, newline or escape sequence from an image would break the
    columns or reach the terminal."""
    rows = [[escape_controls(str(cell)) for cell in row] for row in rows]
    widths = [max(len(str(cell)) for cell in col) for col in zip(headers, *rows)]
    for row in [headers, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row, widths)]
        print("   ".join(cells).rstrip())
