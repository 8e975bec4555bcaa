"""Client settings for kafka-python and Faust, derived from one :class:`Settings`.

Security (SASL/TLS) is configuration: the same code talks to the embedded broker in
PLAINTEXT and to a production cluster over SASL_SSL by changing ``[kafka]`` in the config.
Idempotent and transactional producers are deliberately not enabled: the bus relies on
at-least-once delivery with idempotent effects (event ids), which works on every
Kafka-compatible broker.
"""

from __future__ import annotations

import ssl
from typing import Any

from lienthong.config import Settings


def kafka_python_config(settings: Settings) -> dict[str, Any]:
    """Keyword arguments shared by kafka-python producers, consumers and admin clients."""
    kafka = settings.kafka
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers.split(","),
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol.startswith("SASL"):
        config["sasl_mechanism"] = kafka.sasl_mechanism or "PLAIN"
        config["sasl_plain_username"] = kafka.sasl_username
        config["sasl_plain_password"] = (
            kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        )
    if kafka.security_protocol.endswith("SSL"):
        if kafka.ssl_cafile:
            config["ssl_cafile"] = str(kafka.ssl_cafile)
        if kafka.ssl_certfile:
            config["ssl_certfile"] = str(kafka.ssl_certfile)
        if kafka.ssl_keyfile:
            config["ssl_keyfile"] = str(kafka.ssl_keyfile)
    return config


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    kafka = settings.kafka
    context = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    if kafka.ssl_certfile:
        context.load_cert_chain(
            str(kafka.ssl_certfile), str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None
        )
    return context


def faust_broker_credentials(settings: Settings) -> Any:
    """Faust ``broker_credentials`` for the configured security protocol (None for PLAINTEXT)."""
    import faust

    kafka = settings.kafka
    protocol = kafka.security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(_ssl_context(settings))
    password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
    mechanism = kafka.sasl_mechanism or "PLAIN"
    context = _ssl_context(settings) if protocol == "SASL_SSL" else None
    if mechanism == "PLAIN":
        return faust.SASLCredentials(
            username=kafka.sasl_username, password=password, ssl_context=context
        )
    return faust.SASLCredentials(
        username=kafka.sasl_username,
        password=password,
        ssl_context=context,
        mechanism=mechanism,
    )


def resume_from_committed(consumer: Any, tps: list[Any]) -> None:
    """Assign ``tps`` and continue from the group's committed offsets (from the start if none).

    Why manual assignment instead of ``subscribe``: each connector is one process per group,
    and consumer-group joins are slow on some Kafka-compatible brokers; the group id is used
    only to store the offsets the connector commits after its outside system acknowledged.
    """
    consumer.assign(tps)
    for tp in tps:
        committed = consumer.committed(tp)
        if committed is None:
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, committed)
