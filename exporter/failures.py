"""What a failed API duty is called: the one place that maps an exception to a ``code``.

The code is what the logs, ``aliyun_rds_backup_collect_success`` and the discovery status carry:
the API's error Code (or one of the client's own, see ``exporter.aliyun.errors``),
``CredentialsError`` when no credentials could be had, and ``ExporterError`` for anything else,
which is a bug: it is logged with its traceback once, and the task goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.aliyun.credentials import CredentialsError
from exporter.aliyun.errors import ApiError

CREDENTIALS = "CredentialsError"
UNEXPECTED = "ExporterError"


@dataclass(frozen=True)
class Failure:
    code: str
    message: str  # one line, redacted: safe for the log
    retryable: bool  # throttling, server or network trouble: worth asking again soon

    @property
    def unexpected(self) -> bool:
        """A bug rather than an answer: log it with its traceback."""
        return self.code == UNEXPECTED


def failure_of(error: Exception) -> Failure:
    if isinstance(error, ApiError):
        return Failure(error.code, error.summary(), error.retryable)
    if isinstance(error, CredentialsError):
        # The chain may work again at once (a refreshed token, a metadata service back).
        return Failure(CREDENTIALS, str(error), True)
    return Failure(UNEXPECTED, f"unexpected {type(error).__name__}", False)
