"""Which answerer `ASSISTANT_LLM` names, and how each is built: one registry, name → builder.

    ASSISTANT_LLM=extractive       quotes the passages; no language model (the default)
    ASSISTANT_LLM=openai:<model>   any OpenAI-compatible server (OPENAI_BASE_URL, OPENAI_API_KEY)
    ASSISTANT_LLM=ollama:<model>   an Ollama server (OLLAMA_HOST)
    ASSISTANT_LLM=gguf:<path>      a local model file, served in this process by llama.cpp (xllamacpp)

The names and what follows their colon are `config.LLM_BACKENDS` (the settings check a value
against them; `BACKENDS` builds each of them and no other). The language models are LangChain
chat models, imported only when chosen (`requirements-llm.txt`); each answers through a
`ChatAnswerer` that falls back to the extractive answerer. Packaged model files: `model_files.py`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .base import Answerer
from .chat import ChatAnswerer, floor
from .extractive import ExtractiveAnswerer, SentenceVectors
from .model_files import REQUIREMENTS, ModelUnavailable
from .prompt import relevance
from .verify import Support
from ..config import LLM_BACKENDS, LLMSettings, llm_forms
from ..indexing.embeddings import Embedder


@dataclass(frozen=True)
class Parts:
    """The shared objects an answerer is built from (`wiring` makes each once)."""

    embedder: Embedder  # embeds questions and sentences: the reader (`indexing.sentence_model`)
    idf: Callable[[str], float] | None = None  # a term's weight in the corpus (`Lexical.idf`)
    sentence_vectors: SentenceVectors | None = None  # stored at ingest (`Store.sentence_vectors`)


# (what follows the colon in ASSISTANT_LLM, the llm settings, the parts) → the answerer
Builder = Callable[[str, LLMSettings, Parts], Answerer]


def build_answerer(llm: LLMSettings, parts: Parts) -> Answerer:
    """The answerer `llm.backend` names, built by its registry entry."""
    kind, _, name = llm.backend.partition(":")
    if kind not in BACKENDS:
        raise ModelUnavailable(f"ASSISTANT_LLM={llm.backend!r}: use {llm_forms()}")
    return BACKENDS[kind](name, llm, parts)


def extractive(_: str, llm: LLMSettings, parts: Parts) -> ExtractiveAnswerer:
    return ExtractiveAnswerer(parts.embedder, idf=parts.idf, sentence_vectors=parts.sentence_vectors)


def openai(model: str, llm: LLMSettings, parts: Parts) -> ChatAnswerer:
    module = require_package("langchain_openai", "langchain-openai", llm.backend)
    chat = module.ChatOpenAI(model=model, base_url=llm.openai_base_url or None, api_key=llm.openai_api_key or "none",
                             timeout=llm.llm_timeout, max_retries=0, max_tokens=llm.llm_max_tokens, temperature=0)
    return _chat_answerer(chat, llm, parts)


def ollama(model: str, llm: LLMSettings, parts: Parts) -> ChatAnswerer:
    module = require_package("langchain_ollama", "langchain-ollama", llm.backend)
    chat = module.ChatOllama(model=model, base_url=llm.ollama_host or None, num_predict=llm.llm_max_tokens,
                             client_kwargs={"timeout": llm.llm_timeout}, temperature=0)
    return _chat_answerer(chat, llm, parts)


def gguf(path: str, llm: LLMSettings, parts: Parts) -> ChatAnswerer:
    module = require_package("langchain_openai", "langchain-openai", llm.backend)
    server = LocalServer(Path(path).expanduser(), threads=llm.llm_threads, spec=llm.backend)
    chat = module.ChatOpenAI(model=Path(path).stem, base_url=server.base_url, api_key="none",
                             timeout=llm.llm_timeout, max_retries=0, max_tokens=llm.llm_max_tokens, temperature=0)
    return _chat_answerer(chat, llm, parts, keep_alive=server)


BACKENDS: dict[str, Builder] = {"extractive": extractive, "openai": openai, "ollama": ollama, "gguf": gguf}
assert BACKENDS.keys() == LLM_BACKENDS.keys(), "config.LLM_BACKENDS and the registry name the same backends"


def _chat_answerer(model, llm: LLMSettings, parts: Parts, keep_alive=None) -> ChatAnswerer:
    """A LangChain chat model's answerer: verified against the passages, the extractive answer
    when the model fails, not asked below the floor (fitted, unless the settings name one)."""
    encode, weight = parts.embedder.encode, parts.idf
    fitted_similarity, fitted_coverage = floor()
    given = (fitted_similarity if llm.min_similarity is None else llm.min_similarity,
             fitted_coverage if llm.min_coverage is None else llm.min_coverage)
    return ChatAnswerer(model, extractive("", llm, parts), Support(encode, weight), name=llm.backend,
                        timeout=llm.llm_timeout, keep_alive=keep_alive, context_tokens=llm.llm_context_tokens,
                        score=relevance(encode, weight, stored=parts.sentence_vectors), floor=given)


def require_package(module: str, package: str, spec: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ModelUnavailable(f"ASSISTANT_LLM={spec} needs the {package} package: "
                               f"pip install -r {REQUIREMENTS}") from None


class LocalServer:
    """A GGUF model served by llama.cpp (xllamacpp) inside this process, on a free loopback port,
    with an OpenAI-compatible API. The server stops when this object is collected."""

    def __init__(self, path: Path, threads: int = 1, n_ctx: int = 4096, spec: str = ""):
        xlc = require_package("xllamacpp", "xllamacpp", spec or f"gguf:{path}")
        if not Path(path).is_file():
            raise ModelUnavailable(f"no model file at {path} (ASSISTANT_LLM=gguf:<path to a .gguf file>)")
        params = xlc.CommonParams()
        params.model.path = str(path)
        params.n_ctx = n_ctx
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.hostnames = ["127.0.0.1"]
        params.port = 0  # any free port
        params.verbosity = 0
        # llama.cpp keeps earlier prompts in host RAM to reuse their prefixes (8 GiB by default);
        # ~20 MB per 700-token prompt for a 1.5B model: 256 MiB keeps the last dozen.
        params.cache_ram_mib = 256
        self.server = xlc.Server(params)
        self.base_url = self.server.listening_address.rstrip("/") + "/v1"
