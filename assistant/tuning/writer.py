"""The language model that writes questions, behind one call: `complete(messages, seed) -> str`.

A `gguf:` model is served by llama.cpp (xllamacpp) in this process with `parallel` slots, so
several prompts are decoded in one batch; an `openai:` model is any OpenAI-compatible server.
We talk to the chat endpoint directly (httpx) rather than through `chat_model`, because the
LangChain client sets neither a per-request seed nor a JSON schema for the reply.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from ..answering.backends import require_package
from ..answering.model_files import ModelUnavailable

# Passage (~120 tokens) + instructions and one worked example (~450) + reply (≤ 400) per slot.
SLOT_CONTEXT = 2048


class Writer:
    """Chat completions from one model; thread-safe (one httpx client, many requests in flight)."""

    def __init__(self, base_url: str, model: str, api_key: str = "none", timeout: float = 900.0,
                 server=None):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._server = server  # kept alive while the writer is used
        self._client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {api_key}"},
                                    limits=httpx.Limits(max_connections=16))

    def complete(self, messages: list[dict], seed: int = 0, *, temperature: float = 0.7, max_tokens: int = 400,
                 schema: dict | None = None) -> str:
        """The model's reply to `messages`; with `schema`, constrained to JSON of that schema where
        the server can (llama.cpp turns it into a grammar)."""
        body = {"model": self.model, "messages": messages, "temperature": temperature, "top_p": 0.95,
                "max_tokens": max_tokens, "seed": seed}
        if schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
        response = self._client.post(f"{self.base_url}/chat/completions", json=body)
        response.raise_for_status()
        return response.json()["choices"][0]["message"].get("content") or ""

    def close(self) -> None:
        self._client.close()
        self._server = None


def local_server(path: Path, threads: int = 1, parallel: int = 1, slot_context: int = SLOT_CONTEXT):
    """llama.cpp serving `path` on a free loopback port with `parallel` slots of `slot_context`
    tokens each (as `assistant.models.LocalServer`, which has one slot); (server, base URL)."""
    xlc = require_package("xllamacpp", "xllamacpp", f"gguf:{path}")
    if not Path(path).is_file():
        raise ModelUnavailable(f"no model file at {path} (--llm gguf:<path to a .gguf file>)")
    params = xlc.CommonParams()
    params.model.path = str(path)
    params.n_parallel = parallel
    params.n_ctx = slot_context * parallel  # llama.cpp splits the context among the slots
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.verbosity = 0
    params.cache_ram_mib = 256  # see LocalServer: the default keeps up to 8 GiB of old prompts
    server = xlc.Server(params)
    return server, server.listening_address.rstrip("/") + "/v1"


def open_writer(spec: str, threads: int = 1, parallel: int = 1, settings=None) -> Writer:
    """The writer for a model spec: `gguf:<path>` (served here) or `openai:<model>` (the server
    at `settings.openai_base_url`)."""
    kind, _, name = spec.partition(":")
    if kind == "gguf":
        path = Path(name).expanduser()
        server, base_url = local_server(path, threads=threads, parallel=parallel)
        return Writer(base_url, path.stem, server=server)
    if kind == "openai" and name:
        base_url = (settings.openai_base_url if settings else "") or "https://api.openai.com/v1"
        return Writer(base_url, name, api_key=(settings.openai_api_key if settings else "") or "none")
    raise ModelUnavailable(f"--llm {spec!r}: use gguf:<path> or openai:<model>")
