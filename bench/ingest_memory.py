"""Peak memory of a real ingest (`python -m assistant ingest` in a fresh process) against corpus size.

    python bench/ingest_memory.py [--corpus DIR] [--base 50] [--copies 10] [--full] [--repo OLD_CHECKOUT]

Ingests the first `--base` articles of the corpus, then `--copies` copies of them (each copy a
folder of temporary copies: the same texts as new articles; ingest follows no link out of its
folder), each into a fresh index, and prints each run's peak RSS, with the ratio of the large run to the small one:
near 1 when memory is bounded by the embedding group, near `--copies` when it grows with the
corpus. `--full` adds the whole corpus. Reads the corpus where it lies.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEWS = ROOT.parent / "shared" / "eval" / "news" / "corpus"


def view(files: list[Path], folder: Path, copies: int = 1) -> Path:
    """A corpus folder holding `files`, `copies` times over (copy k in sub-folder k)."""
    for k in range(copies):
        part = folder / f"copy-{k:02d}" if copies > 1 else folder
        part.mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copy(path, part / path.name)
    return folder


def ingest(corpus: Path, index: Path, repo: Path = ROOT) -> dict:
    """Run one ingest of `repo`'s code in a child process; its peak RSS (from the kernel, via
    wait4) and time."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}
    started = time.perf_counter()
    # Its output goes to files: a pipe nobody reads while we wait fills up and stops the ingest.
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "assistant", "ingest", "--corpus", str(corpus), "--index",
                                 str(index), "--quiet"], cwd=repo, env=env, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        stdout.seek(0)
        stderr.seek(0)
        out = stdout.read().decode()
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"ingest failed:\n{stderr.read().decode()[-3000:]}")
    return {"summary": out.splitlines()[0], "peak_rss_mb": round(usage.ru_maxrss / 1024), "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=NEWS if NEWS.exists() else ROOT / "corpus")
    parser.add_argument("--base", type=int, default=50, help="articles in the small run")
    parser.add_argument("--copies", type=int, default=10, help="the large run: this many copies of them")
    parser.add_argument("--full", action="store_true", help="also ingest the whole corpus")
    parser.add_argument("--repo", type=Path, default=ROOT, help="the checkout whose ingest runs (an older "
                        "commit's worktree, for a before/after)")
    args = parser.parse_args()

    files = sorted(p for p in args.corpus.rglob("*") if p.is_file() and not p.name.startswith("."))
    work = Path(tempfile.mkdtemp(prefix="pd-ingest-memory-"))
    runs = {}
    try:
        runs[f"{len(files[:args.base])} articles"] = ingest(view(files[:args.base], work / "small"), work / "i1", args.repo)
        runs[f"{args.copies}x copies"] = ingest(view(files[:args.base], work / "large", args.copies), work / "i2",
                                                args.repo)
        if args.full:
            runs[f"whole corpus ({len(files)} files)"] = ingest(view(files, work / "full"), work / "i3", args.repo)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, run in runs.items():
        print(f"{name:>28}: peak RSS {run['peak_rss_mb']} MB, {run['seconds']} s — {run['summary']}")
    small, large = list(runs.values())[:2]
    ratio = round(large["peak_rss_mb"] / small["peak_rss_mb"], 2)
    print(f"peak RSS, {args.copies}x the articles vs 1x: {ratio} (1.0: bounded by the embedding group; "
          f"{args.copies}.0: grows with the corpus)")
    print(json.dumps({"runs": runs, "rss_ratio_large_vs_small": ratio}))


if __name__ == "__main__":
    main()
