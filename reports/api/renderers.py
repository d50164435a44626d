"""CSV export of a report's rows (``Accept: text/csv`` or ``?format=csv``), safe to open in a spreadsheet.

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return would be read as a formula
(CSV injection, OWASP): it is prefixed with ``'``. Numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from rest_framework.renderers import BaseRenderer

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell as written: ``None`` empty, text defused, numbers as they are."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        text = str(value)
        return "'" + text if text.startswith(FORMULA_STARTS) else text
    return value


class ReportCSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        rows = data.get("rows", []) if isinstance(data, dict) else []
        columns = data.get("columns") if isinstance(data, dict) else None
        columns = columns or (list(rows[0]) if rows else [])
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([csv_cell(column) for column in columns])
        for row in rows:
            writer.writerow([csv_cell(row.get(column)) for column in columns])
        return out.getvalue().encode("utf-8")
