"""The InvisOutlet callback catalog, the message decoder, and argument meanings.

All protocol knowledge lives in this package (protocol/README.md sections 2-7), so that
the framer stays byte-level and the analysis only correlates. Each callback is one
``CallbackSpec`` (``spec``) in its family's module: ``device`` (cb1, 2, 5-7, 12, 24,
25), ``accessories`` (cb3, 4, 9, 10, 14, 15, 17, 18), ``sensors`` (cb11, 26-28) and
``ota`` (cb20-23, with the target, method and device_type tables); ``catalog`` gathers
them. Around them: ``decode`` (the hot path: envelope, cheap checks, lazy arguments),
``describe`` (``fields`` and ``summary``, on demand for people), ``duplicates``
(repeated keys) and ``redaction`` (the one rule for secrets).

Nothing here rejects a message: the docs contradict each other (README section 7), so
odd shapes are annotated and shown raw, never refused.
"""

from proxy.core.protocol.catalog import (
    CATALOG,
    FIRE_AND_FORGET,
    is_fire_and_forget,
    name_of,
    puback_meaning,
)
from proxy.core.protocol.common import Field
from proxy.core.protocol.decode import adopt_request, decode
from proxy.core.protocol.describe import fields, summary
from proxy.core.protocol.duplicates import duplicate_keys, possible_callbacks
from proxy.core.protocol.ota import firmware_versions, ota_device_type, ota_request_target
from proxy.core.protocol.redaction import (
    MQTT_ACCOUNT_KEYS,
    REDACTED,
    SECRET_KEYS,
    URL_KEYS,
    SecretKind,
    redact_bytes,
    redact_url,
    redact_value,
    secret_kind,
)
from proxy.core.protocol.spec import CallbackSpec

__all__ = [
    "CATALOG",
    "FIRE_AND_FORGET",
    "MQTT_ACCOUNT_KEYS",
    "REDACTED",
    "SECRET_KEYS",
    "URL_KEYS",
    "CallbackSpec",
    "Field",
    "SecretKind",
    "adopt_request",
    "decode",
    "duplicate_keys",
    "fields",
    "firmware_versions",
    "is_fire_and_forget",
    "name_of",
    "ota_device_type",
    "ota_request_target",
    "possible_callbacks",
    "puback_meaning",
    "redact_bytes",
    "redact_url",
    "redact_value",
    "secret_kind",
    "summary",
]
