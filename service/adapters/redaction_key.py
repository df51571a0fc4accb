"""The redaction key: read from the environment or a file the settings name, never from the log's database.

Redaction itself (service/domain/redaction.py) is pure; this is where its secret comes from.
"""

from __future__ import annotations

from service.domain.redaction import MIN_KEY_BYTES, RedactionKey, default_key_id
from service.errors import RedactionKeyMissing
from service.settings import Settings

_HOW = "set OPSGATE_REDACTION_KEY_FILE to a file holding at least 32 random bytes (docs/configuration.md)"


def load_redaction_key(settings: Settings) -> RedactionKey | None:
    """The configured key (``redaction_key``, else the file ``redaction_key_file``), or None when neither is set."""
    if settings.redaction_key and settings.redaction_key_file:
        raise RedactionKeyMissing("set OPSGATE_REDACTION_KEY or OPSGATE_REDACTION_KEY_FILE, not both")
    if settings.redaction_key:
        key, source = settings.redaction_key.encode(), "OPSGATE_REDACTION_KEY"
    elif settings.redaction_key_file:
        source = str(settings.redaction_key_file)
        try:
            key = settings.redaction_key_file.read_bytes().strip()
        except OSError as error:
            raise RedactionKeyMissing(f"cannot read the redaction key file {source}: {error.strerror}") from None
    else:
        return None
    if len(key) < MIN_KEY_BYTES:
        raise RedactionKeyMissing(f"the redaction key in {source} has {len(key)} bytes; at least {MIN_KEY_BYTES}")
    return RedactionKey(key, settings.redaction_key_id or default_key_id(key))


def required_redaction_key(settings: Settings, redacting: list[str]) -> RedactionKey | None:
    """The key, which must be configured when any of ``redacting`` (ruleset names) declares ``redact:``."""
    key = load_redaction_key(settings)
    if key is None and redacting:
        raise RedactionKeyMissing(f"ruleset {', '.join(redacting)} declares redact: fields but no key is set: {_HOW}")
    return key
