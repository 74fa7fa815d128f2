"""Docker's plain tables: columns padded to the widest cell, three spaces apart."""

from __future__ import annotations


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in col) for col in zip(headers, *rows)]
    for row in [headers, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row, widths)]
        print("   ".join(cells).rstrip())
