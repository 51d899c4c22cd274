"""The configuration file's shape, declared once: each section's keys in reading order, each
key's reader and whether it is required, and where each cross-field check runs.

A key's name is also its dataclass field's name in :mod:`exporter.config.model`, and defaults
are not repeated here: a key the file leaves out (or gets wrong) keeps its field's default.
:mod:`exporter.config.sections` reads a section the same way for all of them.
"""

from __future__ import annotations

from exporter.config import checks
from exporter.config import values as v
from exporter.config.endpoint import endpoint
from exporter.config.sections import After, Key, Section, list_of, section_of
from exporter.config.vocabulary import ENGINES, INSTANCE_TYPES, MIN_RESPONSE_BYTES

API = Section(
    keys=(
        Key("endpoint", endpoint),
        Key("timeout", v.positive_duration),
        Key("rate_limit", v.positive_number),
        Key("concurrency", v.integer_from(1)),
        Key("retries", v.integer_from(0)),
        # Far above a real page (about 150 KB for 100 backups), so only a broken answer hits it.
        Key("max_response_bytes", v.integer_from(MIN_RESPONSE_BYTES)),
    )
)

POLLING = Section(
    keys=(
        Key("interval", v.poll_interval),
        Key("window", v.poll_window),
        Key("lookback", v.duration),
        Key("overlap", v.duration),
        Key("page_size", v.page_size),
        Key("policy_refresh", v.off_or_duration),
        Key("recovery_window_refresh", v.off_or_duration),
        Key("log_backup_refresh", v.off_or_duration),
        Key("backup_tasks_refresh", v.off_or_duration),
        Key("cross_region_policy_refresh", v.off_or_duration),
        Key("cross_region_backup_refresh", v.off_or_duration),
        Key("backup_storage_refresh", v.off_or_duration),
    ),
    checks=(
        After("lookback", checks.lookback_covers_window),
        After("overlap", checks.overlap_below_window),
        After("policy_refresh", checks.policy_refresh_within_interval),
        After("policy_refresh", checks.default_overlap_is_zero),
        After("backup_storage_refresh", checks.refreshes_within_interval),
    ),
)

CREDENTIALS = Section(
    keys=(
        Key("access_key_id", v.secret, required=True),
        Key("access_key_secret", v.secret, required=True),
        Key("security_token", v.secret),
    ),
    checks=(After(None, checks.keys_not_empty),),
)

INSTANCE = Section(
    keys=(
        Key("id", v.token, required=True),
        Key("region", v.region, required=True),
        Key("labels", v.string_map(v.label_name)),
    ),
    checks=(After("id", checks.unique_instance_id),),
    allow_null=False,
)

DISCOVERY = Section(
    keys=(
        Key("region", v.region, required=True),
        Key("engines", v.choices(ENGINES)),
        Key("statuses", v.statuses),
        Key("instance_types", v.choices(INSTANCE_TYPES)),
        Key("resource_group", v.token),
        Key("tags", v.tags),
        Key("include_read_only", v.boolean),
        Key("refresh", v.duration_from(1)),
        Key("grace", v.duration),
    ),
    checks=(After("include_read_only", checks.read_only_type_included),),
    allow_null=False,
)

# What an account holds; at the top level (no `accounts:`) these make the one account.
_ACCOUNT_BODY = (
    Key("credentials", section_of(CREDENTIALS)),
    Key("endpoint", endpoint),
    Key("instances", list_of(INSTANCE)),
    Key("discovery", list_of(DISCOVERY)),
)

ACCOUNT = Section(
    keys=(Key("name", v.account_name, required=True), *_ACCOUNT_BODY),
    checks=(
        After("name", checks.unique_account_name),
        After(None, checks.account_has_instances),
        After(None, checks.credential_chain_once),
    ),
    allow_null=False,
)

# The top level without `accounts:`: its credentials, instances and discovery.
TOP_LEVEL_ACCOUNT = Section(
    keys=_ACCOUNT_BODY,
    checks=(After(None, checks.top_level_has_instances),),
)

TOP = Section(
    keys=(
        Key("api", section_of(API)),
        Key("polling", section_of(POLLING)),
        Key("accounts", list_of(ACCOUNT)),
    ),
    checks=(
        After("polling", checks.accounts_replace_top_level),  # before any account is read
        After("accounts", checks.some_account),
    ),
    read_by_caller=("credentials", "instances", "discovery"),  # as TOP_LEVEL_ACCOUNT
    hints={
        **{key.name: f"api.{key.name}" for key in API.keys},
        **{key.name: f"polling.{key.name}" for key in POLLING.keys},
    },
)
