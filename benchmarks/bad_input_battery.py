"""The bad-input battery of issue 17: every case of tests/bad_input_cases.py (the table the test corpus
runs) over every `fastsal` command and the Python API, with outcome counts.

Usage: python benchmarks/bad_input_battery.py [--work DIR] [--only TEXT] [--json]

Writes the shared files (bad model files, a good image, a one-image folder dataset), a stub LiteRT model
and a tiny FastSal-A .keras into --work (default: a new temporary folder, removed at the end), then runs
each case in its own empty folder, in this process. For each case it records the result (exit status,
error raised, warning), whether a traceback was printed, whether the message names the file or flag,
whether a partial or stray output was left, whether an input was changed and whether an output was
silently wrong (see tests/bad_input_cases.py for the rules). Prints a table of the counts per command
and the per-case list (--json: one JSON object with both); exits with status 1 when any case breaks a
rule.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

COLUMNS = ("cases", "exit 0", "exit 1", "exit 2", "raised", "warned", "returned", "traceback", "unnamed",
           "partial", "input changed", "wrong", "failed")


def counts(outcomes) -> dict[str, dict[str, int]]:
    """{command: {column: count}} and an "all" row."""
    table = collections.defaultdict(lambda: dict.fromkeys(COLUMNS, 0))
    for outcome in outcomes:
        for row in (table[outcome.command], table["all"]):
            row["cases"] += 1
            kind = outcome.result.split()[0]
            column = outcome.result if kind == "exit" else kind
            if column in row:
                row[column] += 1
            row["traceback"] += outcome.traceback
            row["unnamed"] += not outcome.named
            row["partial"] += bool(outcome.partial)
            row["input changed"] += bool(outcome.inputs_changed)
            row["wrong"] += bool(outcome.wrong)
            row["failed"] += bool(outcome.problems)
    return dict(sorted(table.items(), key=lambda item: (item[0] == "all", item[0])))


def markdown(table) -> str:
    lines = ["| command | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for command, row in table.items():
        lines.append(f"| {command} | " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=None, help="folder for the generated files (default: a temporary one)")
    parser.add_argument("--only", default="", help="run only the cases whose id contains this text")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    args = parser.parse_args(argv)

    import bad_input_cases as cases
    from fastsal_tf.cli import import_tensorflow_quietly
    from predict_helpers import make_stub_tflite

    import_tensorflow_quietly()
    work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="fastsal_battery_"))
    if work.exists() and any(work.iterdir()):
        parser.error(f"--work {work}: the folder is not empty")
    try:
        start = time.perf_counter()
        shared = cases.make_shared(work / "shared")
        stub = make_stub_tflite(work / "models" / "stub.tflite")
        from fastsal_tf.models import build_fastsal

        build_fastsal("A", (*cases.HW, 3)).save(work / "models" / "tiny_a.keras")
        selected = [case for case in cases.all_cases() if args.only in case.id]
        outcomes = []
        for index, case in enumerate(selected):
            folder = work / "cases" / f"{index:03d}"
            folder.mkdir(parents=True)
            outcomes.append(cases.run_case(case, cases.Env(shared, folder, stub, work / "models" / "tiny_a.keras")))
            if sys.stderr.isatty():
                print(f"\r{index + 1}/{len(selected)} cases", end="", file=sys.stderr, flush=True)
        print(f"\r{len(selected)} cases in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    table = counts(outcomes)
    failed = [outcome for outcome in outcomes if outcome.problems]
    if args.json:
        print(json.dumps({"counts": table, "cases": [{**vars(o), "problems": o.problems} for o in outcomes]},
                         indent=1))
    else:
        print(markdown(table))
        print()
        for outcome in outcomes:
            mark = "FAIL" if outcome.problems else "ok"
            print(f"{mark:4s} {outcome.command:12s} {outcome.result:22s} {outcome.id}: {outcome.message[:150]}")
            for problem in outcome.problems:
                print(f"       {problem}")
        print(f"\n{len(outcomes)} cases, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
