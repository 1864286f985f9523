"""Policy Desk: `python app.py [--host H] [--port P]` serves the chat."""

import argparse
import os

# Set before gradio, chromadb or huggingface_hub are imported: without them they reach for the network.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from assistant.config import load_settings  # noqa: E402
from assistant.service import build_assistant  # noqa: E402
from assistant.ui import CSS, build_app  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", help="default $ASSISTANT_HOST or 127.0.0.1")
    parser.add_argument("--port", type=int, help="default $ASSISTANT_PORT or 7860")
    args = parser.parse_args()
    settings = load_settings().with_(host=args.host, port=args.port)
    assistant = build_assistant(settings, ingest_if_empty=True)
    build_app(assistant, settings.examples).launch(
        server_name=settings.host, server_port=settings.port, css=CSS, footer_links=["api"])
