"""Event contracts: Avro schemas (.avsc), pydantic models and the wire format."""
