from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from core.tabular import Table, UnknownFormat, export_format, table_csv, table_response


def small_table() -> Table:
    table = Table(title="随访", columns=["患者", "日期", "眼压", "备注"])
    table.add(["张晓宇", dt.date(2026, 12, 5), Decimal("23.5"), '=HYPERLINK("x")'])
    table.add(["李四", None, 18, "-1+2"])
    return table


def test_csv_opens_in_excel_as_utf8_and_formulas_stay_text():
    data = table_csv(small_table())

    assert data.startswith("\ufeff".encode())
    lines = data.decode("utf-8-sig").splitlines()
    assert lines == [
        "患者,日期,眼压,备注",
        '张晓宇,2026-12-05,23.5,"\'=HYPERLINK(""x"")"',
        "李四,,18,'-1+2",
    ]


def test_xlsx_has_one_sheet_per_table_with_typed_cells():
    response = table_response([small_table()], "xlsx", "recall")

    assert response["Content-Disposition"] == 'attachment; filename="recall.xlsx"'
    sheet = load_workbook(io.BytesIO(response.content))["随访"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("患者", "日期", "眼压", "备注")
    # A spreadsheet date has no time zone: openpyxl reads it back naive.
    day = dt.datetime(2026, 12, 5)  # noqa: DTZ001
    assert rows[1] == ("张晓宇", day, 23.5, '\'=HYPERLINK("x")')
    assert rows[2] == ("李四", None, 18, "'-1+2")


def test_a_row_of_the_wrong_width_and_an_unknown_format_are_refused():
    with pytest.raises(ValueError, match="row has 1 cells, the table 4 columns"):
        small_table().add(["x"])
    with pytest.raises(UnknownFormat, match="use one of csv, xlsx"):
        export_format("pdf")
    assert export_format(None) == "csv"
    assert export_format("XLSX") == "xlsx"
