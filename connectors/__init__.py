"""Adapters to the outside: kafka-python clients, dead letters, external systems."""
