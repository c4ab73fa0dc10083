"""Importing large CSV exports with `tokenledger import csv`: wall time and peak memory (RSS) of the command on
generated exports of growing size (a month of rows in the shipped `generic_long_example` format, about 62
bytes a row), and the header check on a file of 100,000 columns. The baseline, measured in the same run, is
the same command's start-up: `tokenledger import csv` refusing a one-row file with a bad date (interpreter,
imports, database connection, no rows stored), so the figures above it are what the rows cost.

    python -m benchmarks.csv_import                 # 400,000 rows (25 MB) and 4,000,000 rows (250 MB)
    BENCH_CSV_ROWS=16000000 python -m benchmarks.csv_import   # ~1 GB, if disk and time allow
"""

from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, fresh_database, tenant_with_key

HEADER = "Date,Project,API key,Model,Usage type,Quantity,Cost,Currency\n"
USAGE_TYPES = ("Input", "Cached input", "Output", "Requests")
MODELS = ("gpt-5.4-mini", "gpt-5.4", "claude-sonnet-4-6", "deepseek-chat")


def write_export(path: Path, rows: int) -> None:
    """`rows` rows spread over October 2026, many projects, keys and models."""
    generator = random.Random(7)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(HEADER)
        batch: list[str] = []
        for number in range(rows):
            day = 1 + number % 31
            batch.append(
                f"2026-10-{day:02d},proj_{number % 997},key_{number % 4999},{MODELS[number % 4]},"
                f"{USAGE_TYPES[number % 4]},{generator.randrange(1, 10**7)},{generator.randrange(1, 10**6) / 100},USD\n"
            )
            if len(batch) == 100_000:
                out.write("".join(batch))
                batch.clear()
        out.write("".join(batch))


def run_import(url: str, path: Path, tenant: str) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit code) of one `tokenledger import csv` process."""
    env = {**os.environ, "TOKENLEDGER_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-c",
        "import resource, sys\n"
        "from ledger.cli.main import app\n"
        "try:\n"
        "    app(sys.argv[1:])\n"
        "finally:\n"
        "    print('peak_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n",
        "import",
        "csv",
        "--mapping",
        "generic_long_example",
        "--file",
        str(path),
        "--tenant",
        tenant,
    ]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=7200)
    seconds = time.perf_counter() - started
    peak_kb = next(
        (int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("peak_kb")),
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return seconds, peak_kb / 1024, done.returncode


def main() -> None:
    url = fresh_database("tokenledger_bench_csv_import")
    tenant = tenant_with_key(url)[0]
    tenant_name = _tenant_name(url, tenant)
    sizes = [int(os.environ["BENCH_CSV_ROWS"])] if "BENCH_CSV_ROWS" in os.environ else [400_000, 4_000_000]
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as folder:
        bad = Path(folder, "bad.csv")
        bad.write_text(HEADER + "9999-12-31,p,k,gpt-5.4,Input,1,1,USD\n")
        base_seconds, base_mb, code = run_import(url, bad, tenant_name)
        assert code != 0, "the baseline file must be refused"
        print(f"baseline (start-up, one row refused): {base_seconds:6.2f} s, peak RSS {base_mb:6.0f} MB")
        wide = Path(folder, "wide.csv")
        # the mapping's columns, 100,000 others, and one of those again: refused for the repeated column
        wide.write_text(HEADER.rstrip("\n") + "," + ",".join(f"c{n}" for n in range(100_000)) + ",c99999\n")
        seconds, _, code = run_import(url, wide, tenant_name)
        print(
            f"header of 100,000 columns ({wide.stat().st_size / 1e3:.0f} kB) checked and refused: {seconds:6.2f} s "
            f"({seconds - base_seconds:+.2f} s over the baseline), exit code {code}"
        )
        for rows in sizes:
            export = Path(folder, f"export_{rows}.csv")
            write_export(export, rows)
            size_mb = export.stat().st_size / 1e6
            seconds, peak_mb, code = run_import(url, export, tenant_name)
            assert code == 0, f"the import of {rows} rows failed"
            per_row = (peak_mb - base_mb) * 1024 * 1024 / rows
            print(
                f"{rows:>10,} rows, {size_mb:7.1f} MB: {seconds:7.1f} s ({rows / seconds:8,.0f} rows/s), "
                f"peak RSS {peak_mb:6.0f} MB = baseline + {peak_mb - base_mb:5.0f} MB ({per_row:6.1f} bytes a row, "
                f"{(peak_mb - base_mb) / size_mb:4.2f} MB per MB of file)"
            )
            export.unlink()


def _tenant_name(url: str, tenant_id: int) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        name = conn.execute(sa.text("SELECT name FROM tenants WHERE id = :id"), {"id": tenant_id}).scalar_one()
    engine.dispose()
    return str(name)


if __name__ == "__main__":
    main()
