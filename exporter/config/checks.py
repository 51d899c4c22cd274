"""The rules that tie one key to another, or one entry to the others.

Each is a ``(report, values)`` function that reports ``path: problem`` lines (or warnings), run
by the section reader at the point :mod:`exporter.config.schema` gives it. The values a rule
reads are already checked on their own; a rule says nothing about a key that had a problem of
its own, so each mistake is reported once.
"""

from __future__ import annotations

from exporter.config.durations import format_duration
from exporter.config.errors import Report, child
from exporter.config.model import PollingConfig
from exporter.config.sections import Values

_POLLING = PollingConfig()  # the defaults
_TOP_LEVEL_ACCOUNT_KEYS = ("credentials", "instances", "discovery")


# ---- polling


def _interval(polling: Values) -> float:
    interval = polling.get("interval", float)
    return _POLLING.interval if interval is None else interval


def _window(polling: Values) -> float:
    window = polling.get("window", float)
    return _POLLING.window if window is None else window


def lookback_covers_window(report: Report, polling: Values) -> None:
    lookback = polling.get("lookback", float)
    window = _window(polling)
    if lookback is not None and polling.usable("window") and lookback < window:
        report.error(
            child(polling.path, "lookback"),
            f"must be at least polling.window ({format_duration(window)}), "
            f"got {format_duration(lookback)}",
        )


def overlap_below_window(report: Report, polling: Values) -> None:
    overlap = polling.get("overlap", float)
    window = _window(polling)
    if overlap is not None and polling.usable("window") and overlap >= window:
        report.error(
            child(polling.path, "overlap"),
            f"must be less than polling.window ({format_duration(window)}), "
            f"got {format_duration(overlap)}",
        )


def policy_refresh_within_interval(report: Report, polling: Values) -> None:
    """A warning: the policy is only ever fetched when its instance is polled."""
    policy_refresh = polling.get("policy_refresh", float)
    interval = _interval(polling)
    if policy_refresh and polling.usable("interval") and policy_refresh < interval:
        report.warn(
            child(polling.path, "policy_refresh"),
            f"{format_duration(policy_refresh)} is shorter than polling.interval "
            f"({format_duration(interval)}); a policy is fetched at most once per "
            "poll of its instance",
        )


DUTY_REFRESHES = (
    "recovery_window_refresh",
    "log_backup_refresh",
    "backup_tasks_refresh",
    "cross_region_policy_refresh",
    "cross_region_backup_refresh",
    "backup_storage_refresh",
)


def refreshes_within_interval(report: Report, polling: Values) -> None:
    """A warning: a duty runs at most once per poll of its instance."""
    interval = _interval(polling)
    for key in DUTY_REFRESHES:
        refresh = polling.get(key, float)
        if refresh and polling.usable("interval") and refresh < interval:
            report.warn(
                child(polling.path, key),
                f"{format_duration(refresh)} is shorter than polling.interval "
                f"({format_duration(interval)}); it runs at most once per poll of its instance",
            )


def default_overlap_is_zero(report: Report, polling: Values) -> None:
    """A warning: with no overlap, a backup running across two polls may be missed."""
    interval, window = _interval(polling), _window(polling)
    if (
        "overlap" not in polling.given
        and polling.usable("window")
        and polling.usable("interval")
        and interval >= window
    ):
        report.warn(
            child(polling.path, "overlap"),
            f"defaults to 0s because polling.interval ({format_duration(interval)}) "
            f"is not shorter than polling.window ({format_duration(window)}); "
            "a backup still running at one poll may never be seen finishing",
        )


# ---- accounts


def accounts_replace_top_level(report: Report, top: Values) -> None:
    shared = [key for key in _TOP_LEVEL_ACCOUNT_KEYS if key in top.given]
    if "accounts" in top.given and shared:
        report.error(
            "accounts",
            f"cannot be combined with top-level {', '.join(shared)} "
            "(move them into an entry of accounts)",
        )


def some_account(report: Report, top: Values) -> None:
    if top.items("accounts") == []:
        report.error("accounts", "must list at least one account")


def unique_account_name(report: Report, account: Values) -> None:
    name = account.get("name", str)
    if name is not None:
        first = report.first("account", name, account.path)
        if first != account.path:
            report.error(child(account.path, "name"), f"duplicate of {first}")


def account_has_instances(report: Report, account: Values) -> None:
    if not _lists_something(account):
        report.error(account.path, "no instances or discovery configured")


def top_level_has_instances(report: Report, top: Values) -> None:
    if not _lists_something(top):
        report.error("instances", "no instances or discovery configured")


def _lists_something(account: Values) -> bool:
    """Whether the account lists an instance or discovery entry, even a bad one (a list that
    is not a list was reported already: saying that nothing is configured would be noise)."""
    for key in ("instances", "discovery"):
        entries = account.items(key)
        if key in account.given and (entries is None or entries):
            return True
    return False


def credential_chain_once(report: Report, account: Values) -> None:
    """A warning: two accounts on the default credential chain are the same account."""
    if "credentials" not in account.given:
        first = report.first("credential chain", "", account.path)
        if first != account.path:
            report.warn(
                child(account.path, "credentials"),
                "not set, so this account uses the default credential chain, "
                f"like {first}: both are the same account",
            )


def keys_not_empty(report: Report, credentials: Values) -> None:
    for key in ("access_key_id", "access_key_secret"):
        if credentials.get(key, str) == "":
            report.error(child(credentials.path, key), "must not be empty")


# ---- instances and discovery


def unique_instance_id(report: Report, instance: Values) -> None:
    instance_id = instance.get("id", str)
    if instance_id is not None:
        first = report.first("instance", instance_id, instance.path)
        if first != instance.path:
            report.error(child(instance.path, "id"), f"duplicate of {first}")
            instance.drop("id")


def read_only_type_included(report: Report, discovery: Values) -> None:
    types = discovery.get("instance_types", tuple)
    if types and "Readonly" in types and not discovery.get("include_read_only", bool):
        report.error(
            child(discovery.path, "instance_types"),
            "lists Readonly, but read-only instances are skipped unless include_read_only is true",
        )
