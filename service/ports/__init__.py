"""The ports: small Protocols the use cases depend on, implemented by the adapters."""
