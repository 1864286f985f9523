"""Policy Desk: `python app.py [--host H] [--port P] [--root-path /prefix]` serves the chat,
the embeddable chat (/embed) and the HTTP API (/api/*, described at /api/openapi.json)."""

import argparse
import logging
import os

# Set before gradio, chromadb or huggingface_hub are imported: without them they reach for the network.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import uvicorn  # noqa: E402

from assistant.web.server import build_server  # noqa: E402
from assistant.config import load_settings  # noqa: E402
from assistant.wiring import build_assistant  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", help="default $ASSISTANT_HOST or 127.0.0.1")
    parser.add_argument("--port", type=int, help="default $ASSISTANT_PORT or 7860")
    parser.add_argument("--root-path", help="path prefix behind a reverse proxy; default $ASSISTANT_ROOT_PATH")
    args = parser.parse_args()
    logging.basicConfig(format="%(levelname)s: %(message)s", level=logging.INFO)
    # Our INFO lines; others' warnings only (bm25s sets its own logger to DEBUG).
    logging.root.handlers[0].addFilter(lambda r: r.levelno >= logging.WARNING or r.name.startswith("assistant"))
    settings = load_settings().with_(host=args.host, port=args.port, root_path=args.root_path)
    assistant = build_assistant(settings, ingest_if_empty=True)
    if settings.indexing.refresh_seconds > 0:
        assistant.retriever.watch(settings.indexing.refresh_seconds)  # ingests show up without a restart
    server = build_server(assistant, settings)
    # proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1;
    # the API decides that itself (TRUST_PROXY).
    uvicorn.run(server, host=settings.web.host, port=settings.web.port, root_path=settings.web.root_path,
                proxy_headers=False, access_log=False)
