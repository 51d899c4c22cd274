"""What can go wrong with an API call, as a small hierarchy the poller maps to ``code`` values.

Retryable: throttling, server errors, transport failures, malformed bodies. Permanent: everything
the caller must fix (keys, permissions, unknown instances, bad parameters); retrying cannot help.
"""

from __future__ import annotations


class ApiError(Exception):
    """An RDS call that did not succeed. ``code`` is the API's Code or one of ours."""

    retryable = False

    def __init__(
        self,
        action: str,
        code: str,
        message: str = "",
        *,
        request_id: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.action = action
        self.code = code
        self.message = " ".join(message.split())[:300]
        self.request_id = request_id
        self.http_status = http_status
        self.retry_after = retry_after
        super().__init__(self.summary())

    def redact(self, *secrets: str | None) -> None:
        """Blanks out any of ``secrets`` that the server echoed back into its message."""
        for secret in secrets:
            if secret and secret in self.message:
                self.message = self.message.replace(secret, "****")
        self.args = (self.summary(),)

    def summary(self) -> str:
        """One line for logs: action, code, message, request id."""
        text = f"{self.action}: {self.code}"
        if self.message:
            text += f": {self.message}"
        details = []
        if self.http_status is not None:
            details.append(f"HTTP {self.http_status}")
        if self.request_id:
            details.append(f"RequestId {self.request_id}")
        if details:
            text += f" ({', '.join(details)})"
        return text


class RetryableError(ApiError):
    retryable = True


class ThrottledError(RetryableError):
    """Throttling.* codes, HTTP 429, or an ``x-acs-retry-after`` header."""


class ServerError(RetryableError):
    """5xx, ServiceUnavailable, InternalError."""


class TransportError(RetryableError):
    """Timeouts, refused or reset connections, DNS failures: no answer from the API at all."""


class MalformedResponseError(RetryableError):
    """A 2xx answer whose body is not the JSON object we expect (truncated, HTML, wrong shape)."""


class PermanentError(ApiError):
    """Retrying the same request cannot succeed."""


class AuthError(PermanentError):
    """Keys, signatures, tokens, clock skew, RAM permissions."""


class NotFoundError(PermanentError):
    """The instance (or other resource) does not exist for these credentials."""


class InvalidRequestError(PermanentError):
    """A parameter the API rejected."""


_AUTH_PREFIXES = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidTimeStamp",
    "InvalidSecurityToken",
    "Forbidden",
    "NoPermission",
    "InvalidUserOperatorPermission",
)
_SERVER_CODES = ("ServiceUnavailable", "InternalError", "SignatureNonceUsed", "UnknownError")


def classify(
    action: str,
    http_status: int,
    code: str | None,
    message: str,
    *,
    request_id: str | None,
    retry_after: float | None,
) -> ApiError:
    """Turns an error answer into the right ``ApiError`` subclass."""
    label = code or f"HTTP{http_status}"
    kind: type[ApiError]
    if label.startswith("Throttling") or http_status == 429 or retry_after is not None:
        kind = ThrottledError
    elif label in _SERVER_CODES or http_status >= 500:
        # A fresh nonce fixes SignatureNonceUsed, so it is retried like a server hiccup.
        kind = ServerError
    elif label.startswith(_AUTH_PREFIXES):
        kind = AuthError
    elif label.endswith(".NotFound") or http_status == 404:
        kind = NotFoundError
    else:
        kind = InvalidRequestError
    return kind(
        action,
        label,
        message,
        request_id=request_id,
        http_status=http_status,
        retry_after=retry_after,
    )
