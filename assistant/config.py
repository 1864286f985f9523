"""Settings: one frozen dataclass, built once at the edge from the environment."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping


@dataclass(frozen=True)
class Settings:
    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    # A Chroma server (`chroma run`) instead of the embedded index in `index_dir`: set the host.
    chroma_host: str = ""
    chroma_port: int = 8000
    chroma_auth_token: str = ""  # sent as `Authorization: Bearer …` (for a proxy or Chroma Cloud)
    # The file an ingest holds locked (flock) while it runs; default `index_dir/ingest.lock`,
    # or a per-server file in the temp folder in server mode.
    ingest_lock: Path | None = None
    # Readers' feedback (SQLite); default `index_dir/feedback.sqlite3` (`feedback.feedback_path`).
    feedback_db: Path | None = None
    embed_group: int = 1024  # chunks embedded, then written to Chroma, together
    # How often a running app checks the index for an ingest's changes (seconds; 0: never).
    refresh_seconds: float = 5.0
    host: str = "127.0.0.1"
    port: int = 7860
    top_k: int = 5
    # Before asking a language model (when its own floor is not set): refuse below this dense
    # cosine similarity of the best passage. The extractive answerer decides from weights.json.
    min_similarity: float = 0.1
    # ...or when no passage holds this share of the question's IDF-weighted terms.
    min_coverage: float = 0.4
    torch_threads: int = 1
    max_question_chars: int = 2000
    # Answers (and searches) computed at once by the API and the chat together; 0: the core count.
    max_answers: int = 0
    # Seconds a question waits for one of those slots before it is told to come back (503).
    answer_wait: float = 10.0
    # Shown under the chat; they suit the sample article. `ASSISTANT_EXAMPLES="a|b"`, or "" for none.
    examples: tuple[str, ...] = (
        "How much did trade between China and Russia grow?",
        "Who is Liu Weidong?",
        "What did Zuo Xiying say China should do?",
    )
    # Sites that may frame `/embed` and call `/api/*` from a browser (`EMBED_ALLOWED_ORIGINS`,
    # comma-separated `scheme://host[:port]`); empty: any site may frame it, no CORS.
    embed_allowed_origins: tuple[str, ...] = ()
    # Origins `add` and `feeds` may fetch from although their addresses are not public (loopback,
    # private, link-local…; `ASSISTANT_FETCH_ALLOW`, comma-separated `scheme://host[:port]`, exact
    # matches: `http://127.0.0.1:8799` opens no other port). Empty: public addresses only.
    fetch_allow: tuple[str, ...] = ()
    # Questions per client address, counted together on `/api/ask*`, `/api/search` and the chat, in
    # the `limits` notation ("20/minute; 200/day").
    rate_limit: str = "20/minute"
    # Where those counts live (the `limits` library's storage URI): `memory://`, this process only;
    # `redis://host:port` shared by every app process that names the same Redis (may hold a password).
    rate_limit_storage: str = field(default="memory://", repr=False)
    # Chat questions waiting for one of the 2 answer slots; one more is told "busy, try again".
    queue_size: int = 32
    # Larger request bodies get 413 before they are read (the longest chat turn is far smaller).
    max_body_bytes: int = 1_000_000
    # Behind a reverse proxy: take the client address from the last `X-Forwarded-For` entry.
    trust_proxy: bool = False
    # The path prefix a reverse proxy serves the app under ("/policy-desk"); "" at the site root.
    root_path: str = ""
    # The answer step: `extractive` (no model), `openai:<model>`, `ollama:<model>` or `gguf:<path>`
    # (`assistant/generate.py`; the model backends need `pip install -r requirements-llm.txt`).
    llm: str = "extractive"
    openai_base_url: str = ""  # unset: the OpenAI client's default
    openai_api_key: str = field(default="", repr=False)
    ollama_host: str = ""  # unset: Ollama's default, http://127.0.0.1:11434
    llm_threads: int = 1  # gguf: llama.cpp threads (with the other core busy, 2 threads fell to 1-2 tokens/s)
    llm_timeout: float = 60.0  # seconds a model may take to answer before the extractive answer is shown
    llm_max_tokens: int = 256
    # About how many tokens of passage text the prompt holds: the best sentences with their
    # neighbours (`prompt.excerpts`); 0 gives the model every passage whole. Measured: README.
    llm_context_tokens: int = 400

    def with_(self, **changes) -> "Settings":
        """A copy with the given fields changed; `None` values are ignored."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def load_settings(env: Mapping[str, str] = os.environ) -> Settings:
    """Read `ASSISTANT_*` and `CHROMA_*` variables; unknown or empty ones fall back to defaults."""
    defaults = Settings()

    def get(name, cast, default):
        raw = env.get(name, "").strip()
        if not raw:
            return default
        try:
            return cast(raw)
        except ValueError as exc:
            raise ValueError(f"{name}={raw!r} is not a valid value: {exc}") from None

    return Settings(
        corpus_dir=get("ASSISTANT_CORPUS", Path, defaults.corpus_dir),
        index_dir=get("ASSISTANT_INDEX", Path, defaults.index_dir),
        chroma_host=get("CHROMA_HOST", str, defaults.chroma_host),
        chroma_port=get("CHROMA_PORT", int, defaults.chroma_port),
        chroma_auth_token=get("CHROMA_AUTH_TOKEN", str, defaults.chroma_auth_token),
        ingest_lock=get("ASSISTANT_INGEST_LOCK", Path, defaults.ingest_lock),
        feedback_db=get("ASSISTANT_FEEDBACK_DB", Path, defaults.feedback_db),
        embed_group=get("ASSISTANT_EMBED_GROUP", int, defaults.embed_group),
        refresh_seconds=get("ASSISTANT_REFRESH_SECONDS", float, defaults.refresh_seconds),
        host=get("ASSISTANT_HOST", str, defaults.host),
        port=get("ASSISTANT_PORT", int, defaults.port),
        top_k=get("ASSISTANT_TOP_K", int, defaults.top_k),
        min_similarity=get("ASSISTANT_MIN_SIMILARITY", float, defaults.min_similarity),
        min_coverage=get("ASSISTANT_MIN_COVERAGE", float, defaults.min_coverage),
        torch_threads=get("ASSISTANT_TORCH_THREADS", int, defaults.torch_threads),
        max_question_chars=get("ASSISTANT_MAX_QUESTION_CHARS", int, defaults.max_question_chars),
        max_answers=get("ASSISTANT_MAX_ANSWERS", int, defaults.max_answers),
        answer_wait=get("ASSISTANT_ANSWER_WAIT", float, defaults.answer_wait),
        examples=(tuple(e.strip() for e in env["ASSISTANT_EXAMPLES"].split("|") if e.strip())
                  if "ASSISTANT_EXAMPLES" in env else defaults.examples),
        embed_allowed_origins=get("EMBED_ALLOWED_ORIGINS", _origins, defaults.embed_allowed_origins),
        fetch_allow=get("ASSISTANT_FETCH_ALLOW", _origins, defaults.fetch_allow),
        rate_limit=get("ASSISTANT_RATE_LIMIT", _rate_limit, defaults.rate_limit),
        queue_size=get("ASSISTANT_QUEUE_SIZE", _positive, defaults.queue_size),
        max_body_bytes=get("ASSISTANT_MAX_BODY_BYTES", _positive, defaults.max_body_bytes),
        rate_limit_storage=get("ASSISTANT_RATE_LIMIT_STORAGE", _limit_storage, defaults.rate_limit_storage),
        trust_proxy=get("TRUST_PROXY", _flag, defaults.trust_proxy),
        root_path=get("ASSISTANT_ROOT_PATH", _root_path, defaults.root_path),
        llm=get("ASSISTANT_LLM", _llm, defaults.llm),
        openai_base_url=get("OPENAI_BASE_URL", str, defaults.openai_base_url),
        openai_api_key=get("OPENAI_API_KEY", str, defaults.openai_api_key),
        ollama_host=get("OLLAMA_HOST", str, defaults.ollama_host),
        llm_threads=get("ASSISTANT_LLM_THREADS", int, defaults.llm_threads),
        llm_timeout=get("ASSISTANT_LLM_TIMEOUT", float, defaults.llm_timeout),
        llm_max_tokens=get("ASSISTANT_LLM_MAX_TOKENS", int, defaults.llm_max_tokens),
        llm_context_tokens=get("ASSISTANT_LLM_CONTEXT_TOKENS", int, defaults.llm_context_tokens),
    )


_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:\d{1,5})?$|^https?://\[[0-9a-f:.]+\](:\d{1,5})?$", re.IGNORECASE)
_RATE = re.compile(r"^\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day|month|year)s?$", re.IGNORECASE)


def _origins(raw: str) -> tuple[str, ...]:
    """Browser origins as they appear in an `Origin` header: scheme, host, optional port."""
    origins = tuple(o.strip().rstrip("/").lower() for o in raw.split(",") if o.strip())
    for origin in origins:
        if not _ORIGIN.match(origin):
            raise ValueError(f"{origin!r} is not an origin like https://news.example.org")
    return origins


def _rate_limit(raw: str) -> str:
    for part in re.split(r"[;,]", raw):
        if not _RATE.match(part.strip()):
            raise ValueError(f"{part.strip()!r} is not a rate like 20/minute")
    return raw


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("a whole number of at least 1")
    return value


def _limit_storage(raw: str) -> str:
    if re.match(r"^(memory://$|redis://\S+|rediss://\S+|redis\+unix://\S+)", raw):
        return raw
    raise ValueError("use memory:// or redis://host:port (rediss://, redis+unix:// also work)")


def _llm(raw: str) -> str:
    kind, _, name = raw.partition(":")
    if raw == "extractive" or (kind in ("openai", "ollama", "gguf") and name.strip()):
        return raw
    raise ValueError("use extractive, openai:<model>, ollama:<model> or gguf:<path>")


def _flag(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("use 1 or 0")


def _root_path(raw: str) -> str:
    if not raw.startswith("/"):
        raise ValueError("a path starting with /")
    return raw.rstrip("/")
