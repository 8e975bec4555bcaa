"""Embedded broker, topic catalogue and process supervision: how the bus is run."""
