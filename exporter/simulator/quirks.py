"""Ways the real RDS API departs from what a client would naively expect.

Each is on by default, because the simulator stands in for the real API; each can be switched
off (``Quirks.none()`` for all) when a test pins output that a quirk would vary. Plain mutable
record: tests change it while a client runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass
class Quirks:
    # Instances flagged ``minute_precision`` render BackupStartTime/BackupEndTime without
    # seconds (``yyyy-MM-ddTHH:mmZ``), as documented; the documented examples carry seconds.
    minute_times: bool = True
    # Some successful backups have IsAvail 0 ("cannot be used to restore"). Off: every
    # success renders IsAvail 1.
    unusable_successes: bool = True
    # DescribeBackups asked for a page past the last one (page > 1) answers HTTP 400
    # InvalidPageNumbers.Malformed instead of an empty page.
    page_past_end_error: bool = True
    # DescribeBackups' PageNumber, PageRecordCount and TotalRecordCount are JSON strings.
    string_counters: bool = True
    # Errors are XML unless the request's Accept header names application/json.
    xml_errors_unless_json: bool = True
    # About half of the throttled answers carry x-acs-retry-after (1000..5000 ms).
    retry_after_on_throttle: bool = True

    @classmethod
    def none(cls) -> Quirks:
        """Every quirk off: the API as a client would naively expect it."""
        return cls(**{field.name: False for field in dataclasses.fields(cls)})
