"""Exports of what a page shows: one mechanism for every page, CSV and PDF.

Public functions: ``costs_csv`` (rows of a cost query, exact decimals, formula injection
neutralised) and ``costs_pdf`` (a report: title, filters, who and when, a chart, the table, page
numbers; drawn on the server with no browser); ``neutralise`` for any text cell.
"""

from services.exports.csv_files import costs_csv, neutralise
from services.exports.pdf_files import costs_pdf

__all__ = ["costs_csv", "costs_pdf", "neutralise"]
