"""The export config file (YAML, docs/export.md) and the sinks it names."""

from __future__ import annotations

from pathlib import Path

import msgspec

from service.adapters.export.jetstream import JetStreamSink
from service.adapters.export.webhook import WebhookSink, sink_secret
from service.errors import InvalidSettings
from service.ports.export import ExportConfig, HttpSinkConfig, Sink


def load_export_config(path: Path) -> ExportConfig:
    """The config at ``path``, decoded strictly; InvalidSettings naming the file, field and reason."""
    try:
        config = msgspec.yaml.decode(path.read_bytes(), type=ExportConfig)
    except OSError as error:
        raise InvalidSettings(f"export config {path}: {error.strerror or error}") from None
    except msgspec.ValidationError as error:
        raise InvalidSettings(f"export config {path}: {error}") from None
    except msgspec.DecodeError as error:
        raise InvalidSettings(f"export config {path}: not YAML: {error}") from None
    names = [sink.name for sink in config.sinks]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InvalidSettings(f"export config {path}: sink names must differ (each names a cursor): {repeated}")
    return config


def build_sinks(config: ExportConfig, source: Path) -> list[Sink]:
    """One sink per entry of the config read from ``source``; nothing connects yet (the exporter
    connects, and reconnects, in the background).  InvalidSettings naming the entry and the reason."""
    sinks: list[Sink] = []
    for index, entry in enumerate(config.sinks):
        try:
            sinks.append(
                WebhookSink(entry, sink_secret(entry)) if isinstance(entry, HttpSinkConfig) else JetStreamSink(entry)
            )
        except InvalidSettings as error:
            raise InvalidSettings(f"export config {source}: {error.message} - at `$.sinks[{index}]`") from None
    return sinks
