"""Settings: frozen dataclasses grouped by concern, built once at the edge from the environment.

Each field names its environment variable and says in one line what it does (`setting`); the
table in docs/configuration.md is generated from them (`python -m assistant.config --markdown`) and
checked against them (`tests/test_config.py`). A component
receives its own group (`settings.storage`, `settings.answers`, …), not all of `Settings`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping


def setting(default: Any, env: str, help: str, parse: Callable[[str], Any] = str, secret: bool = False,
            empty: Any = None):
    """A settings field: its default, environment variable, one-line description and parser.
    `empty`: the value a variable set to "" means (default: the field's default)."""
    return field(default=default, repr=not secret,
                 metadata={"env": env, "help": help, "parse": parse, "empty": empty})


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


# The answerers ASSISTANT_LLM names, each with what follows its colon ("": nothing); the one
# list: `answering.backends.BACKENDS` builds exactly these.
LLM_BACKENDS = {"extractive": "", "openai": "<model>", "ollama": "<model>", "gguf": "<path>"}


def llm_forms() -> str:
    """The values ASSISTANT_LLM takes, as a user reads them: "extractive, openai:<model>, … or gguf:<path>"."""
    forms = [f"{kind}:{arg}" if arg else kind for kind, arg in LLM_BACKENDS.items()]
    return ", ".join(forms[:-1]) + " or " + forms[-1]


def _llm(raw: str) -> str:
    kind, colon, name = raw.partition(":")
    arg = LLM_BACKENDS.get(kind)
    if (arg == "" and not colon) or (arg and name.strip()):
        return raw
    raise ValueError(f"use {llm_forms()}")


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


def _examples(raw: str) -> tuple[str, ...]:
    return tuple(e.strip() for e in raw.split("|") if e.strip())


@dataclass(frozen=True)
class StorageSettings:
    """Where articles, the index and readers' feedback live."""

    corpus_dir: Path = setting(Path("corpus"), "ASSISTANT_CORPUS", "the articles folder", Path)
    index_dir: Path = setting(Path("index"), "ASSISTANT_INDEX", "the embedded Chroma index folder (with a Chroma server: where this machine keeps the lexical index)", Path)
    chroma_host: str = setting("", "CHROMA_HOST", "a Chroma server (`chroma run`) instead of the embedded index")
    chroma_port: int = setting(8000, "CHROMA_PORT", "that server's port", int)
    chroma_auth_token: str = setting("", "CHROMA_AUTH_TOKEN", "sent to it as `Authorization: Bearer …`",
                                     secret=True)
    ingest_lock: Path | None = setting(None, "ASSISTANT_INGEST_LOCK", "the file an ingest holds locked (default "
                                       "`index/ingest.lock`; per server in the temp folder in server mode)", Path)
    feedback_db: Path | None = setting(None, "ASSISTANT_FEEDBACK_DB", "readers' feedback, SQLite (default "
                                       "`index/feedback.sqlite3`)", Path)


@dataclass(frozen=True)
class SourcesSettings:
    """What `add` and `feeds` may fetch."""

    fetch_allow: tuple[str, ...] = setting((), "ASSISTANT_FETCH_ALLOW", "origins `add` and `feeds` may fetch from "
                                           "although their addresses are not public (loopback, private, link-local…; "
                                           "comma-separated, exact `scheme://host[:port]`; empty: public addresses "
                                           "only)", _origins)


@dataclass(frozen=True)
class IndexingSettings:
    """How articles are embedded and how a running app follows an ingest."""

    embed_group: int = setting(1024, "ASSISTANT_EMBED_GROUP", "chunks embedded, then written to Chroma, together", int)
    refresh_seconds: float = setting(5.0, "ASSISTANT_REFRESH_SECONDS", "how often a running app looks for an "
                                     "ingest's changes (0: never)", float)
    torch_threads: int = setting(1, "ASSISTANT_TORCH_THREADS", "threads the embedding model uses", int)


@dataclass(frozen=True)
class AnswerSettings:
    """Retrieval and the answer step's limits."""

    top_k: int = setting(5, "ASSISTANT_TOP_K", "passages retrieved for an answer", int)
    max_question_chars: int = setting(2000, "ASSISTANT_MAX_QUESTION_CHARS", "longest question (and history item)", int)
    max_answers: int = setting(0, "ASSISTANT_MAX_ANSWERS", "answers computed at once by the API and the chat "
                               "together (0: the core count)", int)
    answer_wait: float = setting(10.0, "ASSISTANT_ANSWER_WAIT", "seconds a question waits for one of those "
                                 "slots before it is told to come back (503)", float)


@dataclass(frozen=True)
class LLMSettings:
    """The language model that writes answers, when one is configured."""

    backend: str = setting("extractive", "ASSISTANT_LLM", "`extractive` (no model), `openai:<model>`, "
                           "`ollama:<model>` or `gguf:<path>`", _llm)
    openai_base_url: str = setting("", "OPENAI_BASE_URL", "an OpenAI-compatible server (unset: OpenAI's)")
    openai_api_key: str = setting("", "OPENAI_API_KEY", "its key", secret=True)
    ollama_host: str = setting("", "OLLAMA_HOST", "an Ollama server (unset: http://127.0.0.1:11434)")
    llm_threads: int = setting(1, "ASSISTANT_LLM_THREADS", "gguf: llama.cpp threads", int)
    llm_timeout: float = setting(60.0, "ASSISTANT_LLM_TIMEOUT", "seconds a model may take before the "
                                 "extractive answer is shown", float)
    llm_max_tokens: int = setting(256, "ASSISTANT_LLM_MAX_TOKENS", "longest reply", int)
    min_similarity: float | None = setting(None, "ASSISTANT_MIN_SIMILARITY", "a language model is not asked "
                                           "below this cosine similarity of the best passage (unset: the fitted "
                                           "floor, answering/llm_floor.json)", float)
    min_coverage: float | None = setting(None, "ASSISTANT_MIN_COVERAGE", "…or when no passage holds this share of "
                                         "the question's IDF-weighted terms (unset: the fitted floor)", float)
    llm_context_tokens: int = setting(400, "ASSISTANT_LLM_CONTEXT_TOKENS", "about how many tokens of passage "
                                      "text the prompt holds (0: every passage whole)", int)


EXAMPLES = (
    "How much did trade between China and Russia grow?",
    "Who is Liu Weidong?",
    "What did Zuo Xiying say China should do?",
)


@dataclass(frozen=True)
class WebSettings:
    """The server: where it listens, who may frame it, and how much one client may ask."""

    host: str = setting("127.0.0.1", "ASSISTANT_HOST", "address the app listens on")
    port: int = setting(7860, "ASSISTANT_PORT", "its port", int)
    root_path: str = setting("", "ASSISTANT_ROOT_PATH", "the path prefix a reverse proxy serves the app under",
                             _root_path)
    trust_proxy: bool = setting(False, "TRUST_PROXY", "take the client address from the last "
                                "`X-Forwarded-For` entry (behind a reverse proxy)", _flag)
    examples: tuple[str, ...] = setting(EXAMPLES, "ASSISTANT_EXAMPLES", "example questions under the chat, "
                                        "`a|b` (\"\": none)", _examples, empty=())
    embed_allowed_origins: tuple[str, ...] = setting((), "EMBED_ALLOWED_ORIGINS", "sites that may embed the chat "
                                                     "(`widget.js`, a frame of `/embed`) and call `/api/*` from a browser "
                                                     "(comma-separated)", _origins)
    rate_limit: str = setting("20/minute", "ASSISTANT_RATE_LIMIT", "questions per client address, "
                              "chat and API together", _rate_limit)
    rate_limit_storage: str = setting("memory://", "ASSISTANT_RATE_LIMIT_STORAGE", "where those counts live: "
                                      "`memory://` or `redis://host:port`", _limit_storage, secret=True)
    queue_size: int = setting(32, "ASSISTANT_QUEUE_SIZE", "chat questions waiting for an answer slot", _positive)
    max_body_bytes: int = setting(1_000_000, "ASSISTANT_MAX_BODY_BYTES", "larger request bodies get 413",
                                  _positive)


def _token(raw: str) -> str:
    if len(raw) < 16:
        raise ValueError("at least 16 characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)")
    return raw


@dataclass(frozen=True)
class OwnerSettings:
    """What the desk keeps for its owner (the question log, /owner) and tells an operator (/metrics)."""

    question_log: bool = setting(True, "ASSISTANT_QUESTION_LOG", "log each question asked (time, outcome, "
                                 "articles cited, latency, channel; no address) beside the feedback (0: off)", _flag)
    question_days: int = setting(90, "ASSISTANT_QUESTION_DAYS", "days the question log keeps a question", _positive)
    owner_token: str = setting("", "ASSISTANT_OWNER_TOKEN", "the owner's token: serves `/owner` (unset: no "
                               "such page) and `/metrics` to other than loopback clients", _token, secret=True)
    metrics: bool = setting(False, "ASSISTANT_METRICS", "serve Prometheus metrics at `/metrics` (loopback "
                            "clients, or the owner's token)", _flag)


GROUPS = {"storage": StorageSettings, "sources": SourcesSettings, "indexing": IndexingSettings, "answers": AnswerSettings,
          "llm": LLMSettings, "web": WebSettings, "owner": OwnerSettings}


@dataclass(frozen=True)
class Settings:
    storage: StorageSettings = field(default_factory=StorageSettings)
    sources: SourcesSettings = field(default_factory=SourcesSettings)
    indexing: IndexingSettings = field(default_factory=IndexingSettings)
    answers: AnswerSettings = field(default_factory=AnswerSettings)
    llm: LLMSettings = field(default_factory=LLMSettings)
    web: WebSettings = field(default_factory=WebSettings)
    owner: OwnerSettings = field(default_factory=OwnerSettings)

    @classmethod
    def of(cls, **values) -> "Settings":
        """Defaults with some fields set by their (unique) names: `Settings.of(top_k=3)`."""
        return cls().with_(**values)

    def with_(self, **changes) -> "Settings":
        """A copy with the given fields changed, named without their group; `None` values are ignored."""
        grouped: dict[str, dict] = {}
        for name, value in changes.items():
            if value is None:
                continue
            group = _OWNER.get(name)
            if group is None:
                raise TypeError(f"no setting named {name!r}")
            grouped.setdefault(group, {})[name] = value
        return replace(self, **{g: replace(getattr(self, g), **v) for g, v in grouped.items()})


def load_settings(env: Mapping[str, str] = os.environ) -> Settings:
    """Read each field's variable; unset ones fall back to defaults; a bad value names its variable."""

    def read(group_cls):
        values = {}
        for f in fields(group_cls):
            meta = f.metadata
            if meta["env"] not in env:
                continue
            raw = env[meta["env"]].strip()
            if not raw:
                if meta["empty"] is not None:
                    values[f.name] = meta["empty"]
                continue
            try:
                values[f.name] = meta["parse"](raw)
            except ValueError as exc:
                raise ValueError(f"{meta['env']}={raw!r} is not a valid value: {exc}") from None
        return group_cls(**values)

    return Settings(**{name: read(cls) for name, cls in GROUPS.items()})


def variables() -> list[tuple[str, str, Any, str]]:
    """(group, environment variable, default, description) of every setting, in order."""
    return [(group, f.metadata["env"], f.default, f.metadata["help"])
            for group, cls in GROUPS.items() for f in fields(cls)]


_OWNER = {f.name: group for group, cls in GROUPS.items() for f in fields(cls)}


def _shown(default: Any) -> str:
    if default in (None, "", ()):
        return "unset"
    if isinstance(default, bool):
        return "`1`" if default else "`0`"
    if isinstance(default, tuple):
        return "`" + "|".join(default) + "`"
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"`{default}`"


def markdown() -> str:
    """The table of every setting (group, variable, default, description) for docs/configuration.md."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")  # a pipe inside a table cell, even in `code`

    rows = ["| group | variable | default | description |", "|---|---|---|---|"]
    rows += [f"| {group} | `{env}` | {cell(_shown(default))} | {cell(help_)} |"
             for group, env, default, help_ in variables()]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m assistant.config --markdown")
    print(markdown(), end="")
