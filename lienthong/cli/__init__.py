"""The ``lienthong`` command line: thin entry points over the domain and runtime."""
