"""``/metrics`` for a large fleet: each instance's lines are formatted once per change of its
state, not once per scrape.

The library's encoders format every sample on every scrape: at 10,000 instances that is some
180,000 lines, a few seconds of CPU with the event loop blocked. Here each instance keeps its
lines, family by family, with the state they were formatted from; a scrape formats only the
instances whose state changed since (a poll changes an instance once per interval) and the
values of the families the table in ``exporter.metrics`` marks ``at_scrape`` (backup ages, the
next planned backup, the last successful poll), and joins the rest.

The text is byte for byte what the library's encoders give for the collector's families (the
tests compare them), in the formats Prometheus asks for: text 0.0.4 and 1.0.0 and OpenMetrics
1.0.0, with the ``underscores`` or ``allow-utf-8`` escaping (every name here is a legacy name,
which neither changes). HELP and TYPE lines come from the library's encoder itself. Any other
format or escaping, and ``name[]`` filters, are left to the library.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.exposition import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CONTENT_TYPE_PLAIN_1_0_0,
    choose_encoder,
)
from prometheus_client.openmetrics.exposition import ALLOWUTF8, UNDERSCORES
from prometheus_client.openmetrics.exposition import (
    CONTENT_TYPE_LATEST as OPENMETRICS_1_0_0,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from exporter import metrics as m
from exporter.clock import Clock
from exporter.collector import SCRAPE_TIME_VALUES, BackupCollector, cache_key, render_instance
from exporter.state import FleetState, InstanceState

log = logging.getLogger(__name__)

Encoder = Callable[[Collector], bytes]
# Instances whose lines for a family are joined into one piece of the body: large enough that
# the pieces cost little to hand out, small enough that a piece is not a large copy (a few
# hundred KB at most: a family's lines take from tens to a few hundred bytes an instance).
_BATCH = 1000
# The body of a scrape, piece by piece (see FleetExposition.render).
Body = Iterable[bytes]

_EOF = b"# EOF\n"
_FAST_CONTENT_TYPES = frozenset(
    {
        CONTENT_TYPE_PLAIN_0_0_4,
        OPENMETRICS_1_0_0,
        *(f"{CONTENT_TYPE_PLAIN_1_0_0}; escaping={e}" for e in (UNDERSCORES, ALLOWUTF8)),
        *(f"{OPENMETRICS_1_0_0}; escaping={e}" for e in (UNDERSCORES, ALLOWUTF8)),
    }
)


def go_float(value: float) -> str:
    """A value as the library's encoders write it (Go's formatting: ``1.7e+09``, ``+Inf``)."""
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]  # untyped in the library
    return text


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def sample_prefix(sample: Sample) -> str:
    """A sample's line up to its value: ``name{a="x",b="y"} `` (labels sorted by name)."""
    if not sample.labels:
        return sample.name + " "
    labels = ",".join(
        f'{name}="{escape_label_value(value)}"' for name, value in sorted(sample.labels.items())
    )
    return f"{sample.name}{{{labels}}} "


def sample_line(sample: Sample) -> str:
    return f"{sample_prefix(sample)}{go_float(sample.value)}\n"


class _Families(Collector):
    """Some families, as a collector the library's encoders can take."""

    def __init__(self, families: Iterable[object]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[object]:  # type: ignore[override]
        return iter(self._families)


@dataclass(slots=True)
class _Lines:
    """One instance's formatted lines, and the state they were formatted from.

    The lines of every family not read at scrape time are one ``bytes``, family after family
    in the table's order; ``bounds[k]:bounds[k + 1]`` is the k-th family's. One object per
    instance rather than one per family: at 10,000 instances with every duty on, some 500,000
    small objects fewer (peak RSS 295 -> 261 MiB: bench/README.md, *Every duty on*)."""

    key: tuple[object, ...]  # cache_key() when formatted
    text: bytes
    bounds: array[int]
    broken: bool = False  # its rendering failed: it shows nothing at all


class _Prefix:
    """A family's sample line up to its value, from its label values: what ``sample_prefix``
    gives, without a Sample (labels sorted by name once, per family). Formatted at each
    scrape rather than kept per instance: a few hundred bytes an instance otherwise."""

    def __init__(self, metric: m.MetricDef) -> None:
        names = metric.labels
        self.order = sorted(range(len(names)), key=names.__getitem__)
        # The label values go where the %s are, escaped (legacy names hold no "%").
        inner = ",".join(f'{names[i]}="%s"' for i in self.order)
        self.template = f"{metric.full_name}{{{inner}}} " if names else f"{metric.full_name} "

    def __call__(self, labels: tuple[str, ...]) -> str:
        if len(labels) == 1:
            return self.template % _escaped(labels[0])
        return self.template % tuple(_escaped(labels[i]) for i in self.order)


def _escaped(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return escape_label_value(value)
    return value


class FleetExposition:
    """Renders ``/metrics``: the registry's other collectors (``head``) with the library's
    encoder, then the fleet's families from cached lines, then the exporter's own families."""

    def __init__(
        self,
        registry: CollectorRegistry,
        head: Sequence[Collector],
        collector: BackupCollector,
        state: FleetState,
        clock: Clock,
    ) -> None:
        self._registry = registry
        self._head = list(head)
        self._collector = collector
        self._state = state
        self._clock = clock
        self._cache: dict[str, _Lines] = {}
        self._scratch = collector.families()  # filled by one instance at a time

    def render(self, accept: str, names: Sequence[str] = ()) -> tuple[Body, str]:
        """The body, in pieces to send one after the other, and the Content-Type of a scrape
        with this Accept header. The pieces are slices of the cached lines, cut as they are
        sent: no copy of the whole text is made, nor a list of all its pieces."""
        encoder, content_type = choose_encoder(accept)
        if names or content_type not in _FAST_CONTENT_TYPES:
            registry = self._registry.restricted_registry(names) if names else self._registry
            return [encoder(registry)], content_type
        openmetrics = content_type.startswith("application/openmetrics-text")
        return self._render(encoder, openmetrics), content_type

    def _render(self, encoder: Encoder, openmetrics: bool) -> Body:
        """Everything read from state is read here, at the scrape: the pieces handed out later
        come from these lines and values even if a poll changes the state meanwhile."""
        now = self._clock.time()
        families = self._collector.families()
        instances = list(self._state.instances.values())
        lines = self._refresh(instances)

        def encode(collector: Collector) -> bytes:
            text = encoder(collector)
            return text[: -len(_EOF)] if openmetrics and text.endswith(_EOF) else text

        head = encode(_Families(family for c in self._head for family in c.collect()))
        # HELP and TYPE of each family (the families are empty), and the values read now.
        parts = [
            (
                encode(_Families([family])),
                _at_scrape(metric, lines, instances, now) if metric.at_scrape else None,
            )
            for metric, family in zip(m.INSTANCE_METRICS, families.all(), strict=True)
        ]
        tail = encoder(_Families(self._collector.exporter_families()))
        return _pieces(head, parts, lines, tail)

    def warm(self, limit: int) -> int:
        """Formats up to ``limit`` instances whose state changed since their lines were
        formatted; returns how many. Called between scrapes, so that a scrape right after many
        instances changed at once (every backup policy read just after the first poll) does not
        pay for all of them."""
        formatted = 0
        for instance in list(self._state.instances.values()):
            if formatted >= limit:
                break
            instance_id = instance.target.instance_id
            key = cache_key(instance)
            entry = self._cache.get(instance_id)
            if entry is not None and entry.key == key:
                entry.key = key
                continue
            self._cache[instance_id] = self._format(instance, key)
            formatted += 1
        if len(self._cache) > len(self._state.instances):
            self._cache = {k: v for k, v in self._cache.items() if k in self._state.instances}
        return formatted

    def _refresh(self, instances: Iterable[InstanceState]) -> list[_Lines]:
        """Every instance's lines, formatting again those whose cache key changed; forgets
        instances that left."""
        cache: dict[str, _Lines] = {}
        lines = []
        for instance in instances:
            instance_id = instance.target.instance_id
            key = cache_key(instance)
            entry = self._cache.get(instance_id)
            if entry is None or entry.key != key:
                entry = self._format(instance, key)
            else:
                # Equal, maybe not identical (a poll replaces the summaries with equal ones):
                # the next comparison is by identity again.
                entry.key = key
            cache[instance_id] = entry
            lines.append(entry)
        self._cache = cache
        return lines

    def _format(self, instance: InstanceState, key: tuple[object, ...]) -> _Lines:
        f = self._scratch
        f.clear()
        formatted = [
            family
            for metric, family in zip(m.INSTANCE_METRICS, f.all(), strict=True)
            if not metric.at_scrape
        ]
        try:
            render_instance(f, instance)
            text = bytearray()
            bounds = [0]
            for family in formatted:
                text += "".join([sample_line(s) for s in family.samples]).encode()
                bounds.append(len(text))
            return _Lines(key, bytes(text), array("H" if len(text) <= 0xFFFF else "I", bounds))
        except Exception:  # one broken record must not cost the whole scrape
            log.exception("cannot render instance %s", instance.target.instance_id)
            return _Lines(key, b"", array("H", [0] * (len(formatted) + 1)), broken=True)


def _pieces(
    head: bytes, parts: Sequence[tuple[bytes, bytes | None]], lines: Sequence[_Lines], tail: bytes
) -> Iterator[bytes]:
    """The body: each family's HELP and TYPE, then its lines, values read at the scrape or
    every instance's cached lines for it."""
    yield head
    cached = 0  # index of the family among those cached
    for help_and_type, values in parts:
        yield help_and_type
        if values is not None:
            yield values
            continue
        next_ = cached + 1
        for i in range(0, len(lines), _BATCH):
            yield b"".join(
                [e.text[e.bounds[cached] : e.bounds[next_]] for e in lines[i : i + _BATCH]]
            )
        cached = next_
    yield tail


def _at_scrape(
    metric: m.MetricDef,
    lines: Sequence[_Lines],
    instances: Sequence[InstanceState],
    now: float,
) -> bytes:
    """The lines of a family read at scrape time: values computed now, each sample's line up
    to its value formatted with them."""
    values = SCRAPE_TIME_VALUES[metric]
    prefix = _Prefix(metric)
    out = []
    for entry, instance in zip(lines, instances, strict=True):
        if entry.broken:
            continue
        try:
            samples = values(instance, now)
        except Exception:  # as in render_instance: only this series of this instance is lost
            log.exception("cannot render instance %s", instance.target.instance_id)
            continue
        for labels, value in samples:
            out.append(f"{prefix(labels)}{go_float(value)}\n")
    return "".join(out).encode()
