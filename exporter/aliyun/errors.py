"""What can go wrong with an API call, as a small hierarchy the poller maps to ``code`` values.

Retryable: throttling, server errors, transport failures, bodies that are not JSON (usually cut
off on the way). Permanent: everything the caller must fix (keys, permissions, unknown instances,
bad parameters) and answers that are well-formed but of the wrong shape or too large: retrying
the same request gets the same answer.

Every text that comes from the API (Code, Message, RequestId) is untrusted: it is cut to a
bounded length, stripped of control characters, and any secret it echoes is blanked out before
it reaches a log line or an error message. The ``code`` label of the request counter takes only
codes from :data:`KNOWN_CODES` (anything else is ``other``), so a peer cannot grow it.
"""

from __future__ import annotations

import re

MAX_CODE_LENGTH = 64
MAX_REQUEST_ID_LENGTH = 64
MAX_MESSAGE_LENGTH = 300
REDACTED = "****"
OTHER_CODE = "other"
# Codes of answers that never came from the API's own error table.
TIMEOUT = "Timeout"
CONNECTION_ERROR = "ConnectionError"
MALFORMED = "MalformedResponse"
INVALID_RESPONSE = "InvalidResponse"
TOO_LARGE = "ResponseTooLarge"
TOO_MANY_PAGES = "TooManyPages"
REDIRECT = "Redirect"
PAGE_PAST_END = "InvalidPageNumbers.Malformed"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


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
        self.code = untrusted(code, MAX_CODE_LENGTH) or "Unknown"
        self.message = untrusted(message, MAX_MESSAGE_LENGTH)
        self.request_id = untrusted(request_id or "", MAX_REQUEST_ID_LENGTH) or None
        self.http_status = http_status
        self.retry_after = retry_after
        super().__init__(self.summary())

    def redact(self, *secrets: str | None) -> None:
        """Blanks out any of ``secrets`` that the server echoed back into its answer."""
        for secret in secrets:
            if not secret:
                continue
            self.code = _blank(self.code, secret)
            self.message = _blank(self.message, secret)
            if self.request_id is not None:
                self.request_id = _blank(self.request_id, secret)
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


def untrusted(text: str, limit: int) -> str:
    """A peer's text made safe for one log line: control characters and runs of whitespace
    become one space, and it is cut to ``limit`` characters."""
    cleaned = " ".join(_CONTROL.sub(" ", text[: limit * 4]).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def _blank(text: str, secret: str) -> str:
    if secret in text:
        return text.replace(secret, REDACTED)
    # Cut short by the length limit, a secret can still leave its head at the very end.
    for size in range(min(len(secret) - 1, len(text)), 3, -1):
        if text.endswith(secret[:size]) or text.endswith(secret[:size] + "..."):
            return text[: text.rfind(secret[:size])] + REDACTED
    return text


class RetryableError(ApiError):
    retryable = True


class ThrottledError(RetryableError):
    """Throttling.* codes, HTTP 429, or an error answer with ``x-acs-retry-after``."""


class ServerError(RetryableError):
    """5xx, ServiceUnavailable, InternalError."""


class TransportError(RetryableError):
    """Timeouts, refused or reset connections, DNS failures: no answer from the API at all."""


class MalformedResponseError(RetryableError):
    """A 2xx answer whose body cannot be read as JSON at all (cut off, HTML, nested too deep):
    usually damage on the way, so it is retried."""


class PermanentError(ApiError):
    """Retrying the same request cannot succeed."""


class InvalidResponseError(PermanentError):
    """A JSON answer of the wrong shape, too large, or a redirect: the same request would get
    the same answer, so it is not retried; the poll fails and the next poll asks again."""


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
    label = untrusted(code or "", MAX_CODE_LENGTH) or f"HTTP{http_status}"
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


# The codes a label may carry: ours, the gateway's, throttling, and the error tables of the
# actions the exporter calls (DescribeBackups' seed page, DescribeBackupPolicy,
# DescribeDBInstances, and the recoverability actions to come). Kept in one place so that the
# label's cardinality is known: len(KNOWN_CODES) + 1 at most, per action.
KNOWN_CODES = frozenset(
    {
        "OK",
        TIMEOUT,
        CONNECTION_ERROR,
        MALFORMED,
        INVALID_RESPONSE,
        TOO_LARGE,
        TOO_MANY_PAGES,
        REDIRECT,
        # Gateway and authentication.
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidTimeStamp.Expired",
        "InvalidTimeStamp.Format",
        "SignatureNonceUsed",
        "MissingSignatureNonce",
        "InvalidSecurityToken.Expired",
        "InvalidSecurityToken.Malformed",
        "InvalidSecurityToken.MismatchWithAccessKey",
        "MissingSecurityToken",
        "Forbidden",
        "Forbidden.RAM",
        "Forbidden.NoPermission",
        "Forbidden.AccessKeyDisabled",
        "Forbidden.RiskControl",
        "NoPermission",
        "InvalidAction.NotFound",
        "InvalidVersion",
        "MissingParameter",
        "MissingDBInstanceId",
        "MissingRegionId",
        "InvalidParameter",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailable.Maintenance",
        "UnknownError",
        "InternalFailure",
        "IO.Exception",
        # Throttling.
        "Throttling",
        "Throttling.User",
        "Throttling.Api",
        "Throttling.Tps",
        "Throttling.Concurrency",
        "Throttling.Resource",
        # DescribeBackups (the seed page's table, the codes a read can meet).
        "InvalidRestoreTime.Malformed",
        PAGE_PAST_END,
        "InvalidStartTime.Format",
        "InvalidEndTime.Format",
        "InvalidParameterCombination",
        "InvalidBackupSetLocation.Format",
        "Api.NotSupport",
        "InvalidDBInstanceId.NotFound",
        "RequiredParam.NotFound",
        "Parameters.Invalid",
        "InvalideStatus.Format",
        "InvalidDBInstanceEngineType.Format",
        "InvalidParam",
        "KmsApiError",
        "SqlExecuteFailedOrTimeout",
        "ExternalFailure",
        "RequestMetaDataFailed",
        "InvokeProxyFailure",
        "InvalidMaxRecordsPerPage.Malformed",
        "IncorrectDBInstanceState",
        "IncorrectDBInstanceType",
        "OrderStatus.UnPaid",
        "InvalidUserOperatorPermission",
        "IncorrectMinorVersion",
        "NotInFlowController",
        "InvalidKmsKey",
        "InvalidInstanceLevel.Malformed",
        "InvalidDBInstanceName.NotFound",
        "InvalidDBInstance.NotFound",
        "Request.NotFound",
        "InvalidClusterKms",
        "HostInfo.NotFound",
        # DescribeDBInstances.
        "InvalidTags.Malformed",
        "InvalidNextToken.Malformed",
        "InvalidMaxResults.Malformed",
        "InvalidRegionId.NotFound",
        "InvalidRegion.Format",
        # Recoverability, cross-region and storage actions.
        "InvalidParameters.Format",
        "ParameterAbsence",
        "ReadDBInstanceNotSupport",
        "IncorrectDBInstanceEngine",
        "IncorrectDBInstanceLockMode",
        "LogBackupNotEnabled",
        "InvalidBinlog.NotFound",
        "InvalidBackup.NotFound",
        "NoAvailableLogBackup",
        "NoAvailableDisasterRestoreBakset",
        "CrossBackupNotSupport",
        "InvalidBackupSetID.NotFound",
        "InvalidPage.notFound",
        "InvalidTime.Format",
    }
)


def code_label(code: str) -> str:
    """The ``code`` label for an outcome: the code itself when known, ``Throttling`` for an
    unknown throttling variant (so throttling alerts still see it), else ``other``; HTTP status
    codes of answers without a Code (``HTTP502``) are kept, they are few."""
    if code in KNOWN_CODES:
        return code
    if code.startswith("Throttling"):
        return "Throttling"
    if re.fullmatch(r"HTTP[1-5]\d\d", code):
        return code
    return OTHER_CODE
