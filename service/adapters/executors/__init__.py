"""The executors of approved actions: the config file and the signed HTTP delivery of one action."""
