"""Partition ends read from fetch responses, not ListOffsets (lienthong.runtime.offsets).

Why: the worker's outputs are written in multi-record batches, and on Tansu 0.6 ListOffsets then
answers the last batch's base offset + 1; every reader that stops "at the end" must use the real
end on any broker.
"""

from __future__ import annotations

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from lienthong.runtime.offsets import high_watermarks


def test_high_watermarks_count_every_record_of_multi_record_batches(
    kafka_bootstrap: str, unique_topic
) -> None:
    topic = unique_topic("offsets")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 3, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=200, batch_size=1 << 20)
    for round_size in (5, 3):  # two batches of several records on partition 0
        for i in range(round_size):
            producer.send(topic, b"v%d" % i, partition=0)
        producer.send(topic, b"one", partition=1)
        producer.flush()
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in range(3)]
        ends = high_watermarks(consumer, tps)
        assert ends == {tps[0]: 8, tps[1]: 2, tps[2]: 0}, (ends, consumer.end_offsets(tps))
        assert high_watermarks(consumer, []) == {}
    finally:
        consumer.close()


def test_console_read_key_reads_past_a_low_list_offsets_answer(bus_settings) -> None:
    """The console's dossier page reader (``read_key``) returns every record of the key, also
    those behind a multi-record batch, and an empty answer for a key with no records."""
    from lienthong.connectors.console.feed import read_key

    topic = bus_settings.topic("portal-status")
    admin = KafkaAdminClient(bootstrap_servers=bus_settings.bootstrap_servers)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(
        bootstrap_servers=bus_settings.bootstrap_servers, linger_ms=200, batch_size=1 << 20
    )
    for round_size in (6, 4):  # two batches of several records each
        for i in range(round_size):
            producer.send(topic, key=b"HS-A" if i % 2 else b"HS-B", value=b"%d" % i)
        producer.flush()
    producer.close()
    assert [r.value for r in read_key(bus_settings, "portal-status", "HS-A")] == [
        b"1",
        b"3",
        b"5",
        b"1",
        b"3",
    ]
    assert len(read_key(bus_settings, "portal-status", "HS-B")) == 5
    assert read_key(bus_settings, "portal-status", "HS-NONE") == []
