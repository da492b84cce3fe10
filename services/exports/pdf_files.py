"""A PDF report of a cost query, drawn on the server with reportlab (no browser needed)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import reportlab
from reportlab.graphics.charts.barcharts import HorizontalBarChart
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas as pdf_canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from services.costs.queries import METRIC_LABELS, OTHER, CostResult

FONT = "FinOpsSans"
FONT_BOLD = "FinOpsSans-Bold"
_FONTS = Path(reportlab.__file__).parent / "fonts"
CHART_TOP_N = 10


def _register_fonts() -> None:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, str(_FONTS / "Vera.ttf")))
        pdfmetrics.registerFont(TTFont(FONT_BOLD, str(_FONTS / "VeraBd.ttf")))


def _drawable(text: str) -> str:
    """The text with every character the embedded font has no glyph for replaced by "?"."""
    face = pdfmetrics.getFont(FONT).face
    return "".join(ch if ord(ch) in face.charToGlyph or ch in "\n\t" else "?" for ch in text)


def _escape(text: str) -> str:
    return _drawable(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


class _NumberedCanvas(pdf_canvas.Canvas):
    """A canvas that writes "Page N of M" on every page once the number of pages is known."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # noqa: N802 - reportlab's name
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont(FONT, 8)
            self.setFillColor(colors.grey)
            self.drawRightString(self._pagesize[0] - 15 * mm, 8 * mm, f"Page {self._pageNumber} of {total}")
            super().showPage()
        super().save()


def _chart(items: Sequence[tuple[str, Decimal]], width: float) -> Drawing:
    """Totals per key as horizontal bars, the largest on top."""
    rows = list(reversed(items))
    height = 14 * len(rows) + 30
    drawing = Drawing(width, height)
    chart = HorizontalBarChart()
    chart.x, chart.y = 170, 15
    chart.width, chart.height = width - 190, height - 25
    chart.data = [[float(a) for _, a in rows]]
    chart.categoryAxis.categoryNames = [_drawable(k[:40]) for k, _ in rows]
    chart.categoryAxis.labels.fontName = FONT
    chart.categoryAxis.labels.fontSize = 7
    chart.categoryAxis.labels.boxAnchor = "e"
    chart.valueAxis.labels.fontName = FONT
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = min(0.0, *(float(a) for _, a in rows))
    chart.valueAxis.labelTextFormat = lambda v: f"{v:,.0f}"
    chart.bars[0].fillColor = colors.HexColor("#4e79a7")
    chart.bars[0].strokeColor = None
    drawing.add(chart)
    return drawing


def costs_pdf(result: CostResult, *, currency: str, title: str, filters: Sequence[tuple[str, str]],
              user: str, generated_at: dt.datetime) -> bytes:
    """A report of a cost query's answer: title, filters, who made it and when, a chart, the table."""
    _register_fonts()
    query = result.query
    styles = getSampleStyleSheet()
    for style in styles.byName.values():
        if hasattr(style, "fontName"):
            style.fontName = FONT_BOLD if style.name.startswith(("Heading", "Title")) else FONT
    buffer = io.BytesIO()
    page = landscape(A4)
    doc = SimpleDocTemplate(buffer, pagesize=page, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm,
                            bottomMargin=15 * mm, title=_drawable(title), author=_drawable(user))
    story: list[Any] = [
        Paragraph(_escape(title), styles["Title"]),
        Paragraph(_escape(f"Generated {generated_at:%Y-%m-%d %H:%M} UTC by {user}"), styles["Normal"]),
        Spacer(1, 4 * mm),
        *([Table([[Paragraph(f"<b>{_escape(k)}</b>", styles["Normal"]), Paragraph(_escape(v), styles["Normal"])]
                  for k, v in filters], colWidths=[45 * mm, page[0] - 75 * mm], hAlign="LEFT",
                 style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))]
          if filters else []),
        Spacer(1, 4 * mm),
        Paragraph(_escape(f"Total: {_money(result.total)} {currency} ({METRIC_LABELS[query.metric]} cost)"),
                  styles["Heading2"]),
    ]
    totals: dict[str, Decimal] = {}
    for row in result.rows:
        key = row.keys[0] if row.keys else (row.period.isoformat() if row.period else "Total")
        totals[key] = totals.get(key, Decimal(0)) + row.amount
    ordered = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(ordered) > CHART_TOP_N:
        ordered = [*ordered[:CHART_TOP_N], (OTHER, sum((a for _, a in ordered[CHART_TOP_N:]), Decimal(0)))]
    if ordered:
        story += [_chart(ordered, page[0] - 30 * mm), Spacer(1, 4 * mm)]
    header = [*(["Period"] if query.granularity != "total" else []), *(d for d in query.group_by),
              f"{METRIC_LABELS[query.metric]} ({currency})"]
    body = [[*([r.period.isoformat() if r.period else ""] if query.granularity != "total" else []),
             *(_drawable(k) for k in r.keys), _money(r.amount)] for r in result.rows]
    width = len(header)
    footer = ["Total", *([""] * (width - 2)), _money(result.total)] if width > 1 else [_money(result.total)]
    table = Table([header, *body, footer], repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), FONT, 8),
        ("FONT", (0, 0), (-1, 0), FONT_BOLD, 8),
        ("FONT", (0, -1), (-1, -1), FONT_BOLD, 8),
        ("ALIGN", (-1, 0), (-1, -1), "RIGHT"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
        ("LINEABOVE", (0, -1), (-1, -1), 0.5, colors.black),
        ("ROWBACKGROUNDS", (0, 1), (-1, -2), [colors.white, colors.HexColor("#f3f4f6")]),
    ]))
    story.append(table)
    doc.build(story, canvasmaker=_NumberedCanvas)
    return buffer.getvalue()
