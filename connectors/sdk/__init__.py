"""Producer SDK for systems that speak Kafka (issue 8).

from lienthong.connectors.sdk import BusClient, BusProducer
"""

from lienthong.connectors.sdk.client import BusClient, PendingEvent
from lienthong.connectors.sdk.producer import BusProducer, PublishError, record_key, wait_acked

__all__ = ["BusClient", "BusProducer", "PendingEvent", "PublishError", "record_key", "wait_acked"]
