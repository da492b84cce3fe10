"""The importer's two ways of parsing a FOCUS file, side by side, printed as figures (never asserted).

The column-wise path (Arrow, ``pipeline._focus_tables``) and the row-by-row path
(``pipeline._period_facts``, the one CUR 2.0 files and every refused or unusual FOCUS file take)
parse the same file into what ``services.costs.ingest.replace_period`` takes. Each is timed on its
own (parsing only) and end to end (``pipeline.import_file`` into a new SQLite database, with the
row-by-row path forced for the second run), each run in a fresh process so that its peak resident
memory is its own.

The file is the FinOps Foundation's FOCUS 1.0 sample (its 999 rows of September 2024, three
providers) repeated ``--copies`` times: an export of one billing period, as exports come. Real
exports repeat their dates, accounts and tag sets as much or more.

    python benchmarks/import_paths.py --copies 200
"""

from __future__ import annotations

import argparse
import collections
import csv
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashapp.cli import migrate  # noqa: E402 - after the path set-up above
from services import audit, crypto, database  # noqa: E402
from services.crypto import Keyring  # noqa: E402
from services.imports import _reading, pipeline  # noqa: E402

#: Beside the repository, as the unit tests find it.
SAMPLE = ROOT.parent / "shared" / "data" / "focus" / "focus-1.0-sample.csv"
MODES = ("parse-columnwise", "parse-rowwise", "import-columnwise", "import-rowwise")


def write_file(sample: Path, copies: int, folder: Path) -> Path:
    """Write the sample's rows of its main billing period ``copies`` times: an export of one period."""
    with sample.open(encoding="utf-8-sig", newline="") as fh:
        header, *rows = csv.reader(fh)
    column = header.index("BillingPeriodStart")
    main_period = collections.Counter(row[column][:10] for row in rows).most_common(1)[0][0]
    rows = [row for row in rows if row[column].startswith(main_period)]
    path = folder / f"{len(rows) * copies}-{main_period}.csv"  # what the runs must find
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        for _ in range(copies):
            writer.writerows(rows)
    return path


def peak_mib() -> float:
    """Return this process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parser_of(path: Path, *, columnwise: bool) -> Callable[[], int]:
    """Return a run that parses the file's billing period into what the ingest service takes."""
    sources = [_reading.Source(path, label=None)]
    period = dt.date.fromisoformat(path.stem.split("-", 1)[1])  # the billing period, named by write_file
    expected = int(path.stem.split("-")[0])
    if columnwise:
        return lambda: sum(table.num_rows for table in pipeline._focus_tables(sources, period=period,
                                                                               expected=expected))
    return lambda: sum(1 for _ in pipeline._period_facts(sources, fmt="focus", period=period, expected=expected))


def loader_of(path: Path, *, columnwise: bool) -> Callable[[], int]:
    """Return a run that imports the file into a new, migrated SQLite database."""
    url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    migrate(url)
    database.configure(url)
    crypto.configure(Keyring.generate_spec())
    audit.configure("benchmark-audit-key-0123")
    if not columnwise:
        pipeline._columnwise_possible = lambda fmt: False  # the path CUR 2.0 files take

    def run() -> int:
        with database.session_scope() as session:
            return pipeline.import_file(session, path=path).rows

    return run


def run_mode(mode: str, path: Path) -> dict[str, float]:
    """Run one mode here and return its figures."""
    columnwise = mode.endswith("columnwise")
    run = (parser_of if mode.startswith("parse") else loader_of)(path, columnwise=columnwise)
    before = peak_mib()
    started = time.perf_counter()
    rows = run()
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "peak_mib": peak_mib(), "baseline_mib": before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    parser.add_argument("--copies", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="Runs of each mode; the fastest counts.")
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:  # a child run
        print(json.dumps(run_mode(args.mode, args.file)))
        return

    path = write_file(args.sample, args.copies, Path(tempfile.mkdtemp()))
    print(f"FOCUS CSV: {args.sample.name} x {args.copies} = {path.stat().st_size / 2**20:,.1f} MiB; "
          f"the fastest of {args.repeats} runs, each in a fresh process")
    for mode in MODES:
        runs = []
        for _ in range(args.repeats):
            out = subprocess.run([sys.executable, __file__, "--mode", mode, "--file", str(path)],
                                 check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
        best = min(runs, key=lambda r: r["seconds"])
        print(f"{mode:18s} {best['rows']:>9,.0f} rows in {best['seconds']:6.2f} s = "
              f"{best['rows'] / best['seconds']:>9,.0f} rows/s; peak memory {best['peak_mib']:,.0f} MiB "
              f"({best['peak_mib'] - best['baseline_mib']:+,.0f} MiB over the process before the run)")
    path.unlink()


if __name__ == "__main__":
    main()
