"""API errors as the gateway reports them: HTTP status, Code and Message, in JSON or XML."""

from __future__ import annotations

import json
from xml.sax.saxutils import escape


class ApiError(Exception):
    """Raised anywhere while answering a request; the server turns it into the JSON error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def missing_parameter(name: str) -> ApiError:
    # The gateway's own wording for an absent required parameter.
    return ApiError(400, f"Missing{name}", f"{name} is mandatory for this action.")


def parameter_absence(name: str) -> ApiError:
    # The code several actions document for an absent required parameter (not the gateway's
    # ``Missing<Name>``, which other actions answer); the message is ours.
    return ApiError(400, "ParameterAbsence", f"The required parameter {name} is missing.")


def instance_not_found() -> ApiError:
    # The reference page lists this code with HTTP 400 and InvalidDBInstance.NotFound with 404;
    # the gateway is seen answering 404 for it. Clients must go by Code, not by status.
    return ApiError(
        404, "InvalidDBInstanceId.NotFound", "The DBInstanceId provided does not exist in records."
    )


def db_instance_not_found() -> ApiError:
    # The code the recoverability actions document (DescribeBackups' gateway says the above).
    return ApiError(404, "InvalidDBInstance.NotFound", "The specified instance is not found.")


def incorrect_engine() -> ApiError:
    return ApiError(
        403,
        "IncorrectDBInstanceEngine",
        "Current DB instance engine does not support this operation.",
    )


def read_only_not_supported() -> ApiError:
    return ApiError(
        400, "ReadDBInstanceNotSupport", "Read-only DB instances do not support this operation."
    )


def invalid_format(name: str) -> ApiError:
    return ApiError(400, "InvalidParameters.Format", f"Specified parameter {name} is not valid.")


def accepts_json(accept: str) -> bool:
    """Does an Accept header name ``application/json`` (with a non-zero q)? ``*/*`` does not
    count: the gateway answers errors in XML unless JSON is asked for by name."""
    for media_range in accept.split(","):
        kind, *options = (part.strip() for part in media_range.split(";"))
        if kind.lower() != "application/json":
            continue
        weights = [value for name, _, value in (o.partition("=") for o in options) if name == "q"]
        try:
            if not weights or float(weights[0]) > 0:
                return True
        except ValueError:
            return True  # a malformed q is ignored, as most servers do
    return False


def error_body(fields: dict[str, str], *, as_json: bool) -> tuple[bytes, str]:
    """The error document and its content type: JSON, or the gateway's XML ``<Error>``."""
    if as_json:
        return json.dumps(fields, separators=(",", ":")).encode(), "application/json"
    inner = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in fields.items())
    text = f"<?xml version='1.0' encoding='UTF-8'?><Error>{inner}</Error>"
    return text.encode(), "text/xml"
