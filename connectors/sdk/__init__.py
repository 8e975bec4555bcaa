"""Producer SDK for systems that speak Kafka (issue 8).

from lienthong.connectors.sdk import BusProducer
"""

from lienthong.connectors.sdk.producer import BusProducer, PublishError, record_key, wait_acked

__all__ = ["BusProducer", "PublishError", "record_key", "wait_acked"]
