"""Faust stream processors: thin adapters that apply the domain rules to event streams."""
