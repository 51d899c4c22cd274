"""API errors as the gateway reports them: HTTP status, Code and Message."""

from __future__ import annotations


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


def instance_not_found() -> ApiError:
    # The reference page lists this code with HTTP 400 and InvalidDBInstance.NotFound with 404;
    # the gateway is seen answering 404 for it. Clients must go by Code, not by status.
    return ApiError(
        404, "InvalidDBInstanceId.NotFound", "The DBInstanceId provided does not exist in records."
    )
