"""lienthong: the one-stop-shop (một cửa liên thông) integration bus.

The package is laid out as a functional core with thin adapters around it:

- ``lienthong.domain``      pure rules: calendar, deadlines, lifecycle, classification (no Kafka)
- ``lienthong.schemas``     event contracts: Avro schemas, pydantic models, wire format
- ``lienthong.streams``     Faust stream processors (adapters around the domain)
- ``lienthong.connectors``  kafka-python producers/consumers, dead letters, external systems
- ``lienthong.simulators``  a simulated province and its counterparts
- ``lienthong.runtime``     embedded broker, topic catalogue, process supervision
- ``lienthong.cli``         the ``lienthong`` command
"""

__version__ = "0.1.0"
