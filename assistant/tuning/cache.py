"""What a run has made, on disk as it is made: the accepted questions (a JSONL file) and the
attempted log beside it (`<name>.attempted.jsonl`, one line per prompt: which sentences were
tried and what became of each, without their text). A killed run leaves at most a torn last
line, which the next run cuts off; sentences named in either file are not asked about again.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path


def attempted_path(out: Path) -> Path:
    out = Path(out)
    return out.with_name(f"{out.stem}.attempted.jsonl")


def question_key(question: str) -> str:
    """A question's identity for de-duplication: lower-case words only."""
    return " ".join(re.findall(r"\w+", question.lower()))


def read_jsonl(path: Path) -> list[dict]:
    """The objects in a JSONL file ([] when missing); lines that do not parse are skipped."""
    if not Path(path).is_file():
        return []
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _cut_torn_line(path: Path) -> None:
    """Drop a last line without its newline (a write the kill interrupted)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        with path.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


class Cache:
    """The accepted records and the attempted sentences of a run, appended durably."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.log = attempted_path(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        for path in (self.out, self.log):
            _cut_torn_line(path)
        self.records = read_jsonl(self.out)
        self.ids = {r.get("id") for r in self.records}
        self.questions = {question_key(str(r.get("question", ""))) for r in self.records}
        # A sentence is attempted once its prompt is logged, or once a record names it (the kill
        # came between the two writes).
        self.attempted = {f"{r['article_id']}:{r['start']}-{r['end']}"
                          for r in self.records if r.get("kind") == "answerable"}
        for row in read_jsonl(self.log):
            for s in row.get("sentences", []):
                self.attempted.add(f"{row.get('article_id')}:{s[0]}-{s[1]}")

    def add(self, records: list[dict], attempt: dict) -> list[dict]:
        """Append the records not already held, then the attempt; both reach the disk before
        this returns. Returns the records written."""
        new = [r for r in records if r["id"] not in self.ids]
        _append(self.out, new)
        _append(self.log, [attempt])
        for r in new:
            self.records.append(r)
            self.ids.add(r["id"])
            self.questions.add(question_key(r["question"]))
        for s in attempt.get("sentences", []):
            self.attempted.add(f"{attempt['article_id']}:{s[0]}-{s[1]}")
        return new


def _append(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        f.flush()
        os.fsync(f.fileno())
