"""Errors a user can act on, translated into messages at the edge (CLI, UI).

    AssistantError
    ├── CorpusError          the corpus folder is missing or empty
    ├── UnreadableFile       one article could not be read (reported, then skipped)
    │   └── OutsideCorpus    a link to a file outside the corpus folder (reported, never followed)
    ├── IndexNotReady        no index yet, or the Chroma server cannot be reached
    ├── IngestRunning        another ingest holds the ingest lock
    ├── FetchFailed          one URL or feed could not be fetched or read (reported, then skipped)
    ├── BadQuestion          empty, too long, or otherwise unusable question
    ├── Busy                 every answer slot is taken (web/capacity.py); try again in `retry_after` s
    └── BadFeedback          a reader's feedback that cannot be stored as sent (too long, unknown rating)
"""

from .i18n import N_

# What a reader is told when something failed that they cannot act on (the log has the rest).
SOMETHING_WRONG = N_("Something went wrong on our side. Please try again.")


class AssistantError(Exception):
    """Base class: `str(error)` is a message fit to show a user, in English.

    Raised as `BadQuestion(N_("… {limit} …"), limit=2000)`, an error keeps its template and
    values, so the edge can say it in the reader's language (`i18n.say`)."""

    def __init__(self, message: str = "", /, **params):
        super().__init__(message.format(**params) if params else message)
        self.template = message
        self.params = params


class CorpusError(AssistantError):
    pass


class UnreadableFile(AssistantError):
    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class OutsideCorpus(UnreadableFile):
    def __init__(self, path):
        super().__init__(path, "a link to a file outside the corpus folder (not followed)")


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


class Busy(AssistantError):
    def __init__(self, message: str, retry_after: int, **params):
        super().__init__(message, **params)
        self.retry_after = retry_after


class BadFeedback(AssistantError):
    pass
