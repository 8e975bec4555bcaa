"""Deployment data shipped with the package: the topic catalogue (``topics.toml``)."""
