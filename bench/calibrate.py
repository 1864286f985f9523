"""Refusal calibration: the two refusal signals for answerable vs unanswerable questions.

    python bench/calibrate.py --index DIR --questions FILE [--questions FILE ...] [--plot docs/refusal.png]

For each question: the dense cosine similarity of the best passage, and the best
IDF-weighted coverage of the question's terms by one of the top passages. Prints
each question's pair and, for candidate floors, how many of each kind would be refused.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from assistant.answering.chat import floor  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.evaluation.scoring import read_questions, with_context  # noqa: E402
from assistant.wiring import build_assistant  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, action="append", required=True)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()

    assistant = build_assistant(Settings.of(index_dir=args.index))
    min_similarity, min_coverage = floor()  # the language model's fitted floor
    rows = []
    for path in args.questions:
        for q, history, filters in with_context(read_questions(path)):
            hits = assistant.search(q.question, history, filters)
            rows.append((q.answerable, *assistant.support(q.question, hits), q.id))
    for answerable, sim, cov, qid in sorted(rows, key=lambda r: r[2]):
        print(f"{'A' if answerable else 'U'} sim {sim:.3f} cov {cov:.3f} {qid}")
    n_a = sum(r[0] for r in rows)
    n_u = len(rows) - n_a
    print(f"\n{n_a} answerable, {n_u} unanswerable; refused at each coverage floor (similarity floor as set):")
    for floor in [x / 20 for x in range(4, 17)]:
        refused = [r for r in rows if r[2] < floor or r[1] < min_similarity]
        ra = sum(r[0] for r in refused)
        print(f"  coverage < {floor:.2f}: unanswerable refused {len(refused) - ra}/{n_u}, answerable refused {ra}/{n_a}")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4.5))
        for kind, color, label in ((True, "tab:blue", "answerable"), (False, "tab:red", "unanswerable")):
            pts = [(r[1], r[2]) for r in rows if r[0] == kind]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], c=color, label=label, alpha=0.7, s=22)
        ax.axhline(min_coverage, color="gray", ls="--", lw=1, label="coverage floor")
        ax.axvline(min_similarity, color="gray", ls=":", lw=1, label="similarity floor")
        ax.set_xlabel("best passage cosine similarity")
        ax.set_ylabel("best IDF-weighted term coverage")
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title("Refusal signals: " + ", ".join(p.stem for p in args.questions))
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=110)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
