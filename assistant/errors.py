"""Errors a user can act on, translated into messages at the edge (CLI, UI).

    AssistantError
    ├── CorpusError          the corpus folder is missing or empty
    ├── UnreadableFile       one article could not be read (reported, then skipped)
    ├── IndexNotReady        no index yet, or the Chroma server cannot be reached
    ├── IngestRunning        another ingest holds the ingest lock
    ├── FetchFailed          one URL or feed could not be fetched or read (reported, then skipped)
    └── BadQuestion          empty, too long, or otherwise unusable question
"""


class AssistantError(Exception):
    """Base class: `str(error)` is a message fit to show a user."""


class CorpusError(AssistantError):
    pass


class UnreadableFile(AssistantError):
    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class IndexNotReady(AssistantError):
    pass


class IngestRunning(AssistantError):
    pass


class FetchFailed(AssistantError):
    def __init__(self, url: str, reason: str):
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class BadQuestion(AssistantError):
    pass
