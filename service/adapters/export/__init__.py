"""The export sinks: the only importer of nats (NATS JetStream) and the HTTP sink's client."""
