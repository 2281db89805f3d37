"""Tables staff download: CSV that Excel opens in Chinese, and real .xlsx workbooks.

A view builds a `Table` (title, columns, rows of plain values) from a selector and returns
`table_response(table, fmt)`; the format comes from the ``?format=`` parameter (`csv` or
`xlsx`). Cells that a spreadsheet would run as a formula are neutralised (CSV injection).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.http import HttpResponse
from django.utils import timezone

Cell = str | int | float | Decimal | dt.date | dt.datetime | bool | None

FORMATS = ("csv", "xlsx")
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# A cell starting with one of these is a formula to Excel, LibreOffice and WPS.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class UnknownFormat(ValueError):
    """The requested export format is not one of FORMATS."""


@dataclass
class Table:
    """A titled table: `columns` are the header texts, each row has one value per column."""

    title: str
    columns: Sequence[str]
    rows: list[Sequence[Cell]] = field(default_factory=list)

    def add(self, row: Sequence[Cell]) -> None:
        if len(row) != len(self.columns):
            raise ValueError(f"row has {len(row)} cells, the table {len(self.columns)} columns")
        self.rows.append(row)


def safe_text(value: str) -> str:
    """A text cell that no spreadsheet evaluates: formula-like text gets a leading apostrophe."""
    if value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def _plain(value: Cell) -> Cell:
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return value.replace(tzinfo=None, microsecond=0)
    if isinstance(value, str):
        return safe_text(value)
    return value


def _csv_text(value: Cell) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def table_csv(table: Table) -> bytes:
    """UTF-8 with a byte-order mark: Excel on Chinese Windows then reads the characters right."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([safe_text(str(column)) for column in table.columns])
    for row in table.rows:
        writer.writerow([_csv_text(value) for value in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def table_xlsx(tables: Iterable[Table]) -> bytes:
    """One worksheet per table; header row bold and frozen, columns sized to their text."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    workbook.remove(workbook.active)
    for table in tables:
        # Sheet names: at most 31 characters, none of []:*?/\
        name = "".join(ch for ch in str(table.title) if ch not in "[]:*?/\\")[:31] or "Sheet"
        sheet = workbook.create_sheet(name)
        sheet.append([safe_text(str(column)) for column in table.columns])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "A2"
        for row in table.rows:
            values = [_plain(value) for value in row]
            sheet.append([float(v) if isinstance(v, Decimal) else v for v in values])
        for index, column in enumerate(table.columns, start=1):
            width = max([len(str(column))] + [len(_csv_text(row[index - 1])) for row in table.rows])
            sheet.column_dimensions[sheet.cell(row=1, column=index).column_letter].width = min(
                60, max(8, width * 1.6 + 2)
            )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def export_format(value: str | None) -> str:
    """The ``?format=`` value checked: `csv` or `xlsx`; anything else raises UnknownFormat."""
    fmt = (value or "csv").lower()
    if fmt not in FORMATS:
        raise UnknownFormat(f"Unknown export format {value!r}; use one of {', '.join(FORMATS)}.")
    return fmt


def table_response(tables: Table | Sequence[Table], fmt: str, filename: str) -> HttpResponse:
    """A download of the table(s); CSV holds the first table only. `filename` has no extension."""
    tables = [tables] if isinstance(tables, Table) else list(tables)
    if fmt == "xlsx":
        response = HttpResponse(table_xlsx(tables), content_type=XLSX_CONTENT_TYPE)
    else:
        response = HttpResponse(table_csv(tables[0]), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response
