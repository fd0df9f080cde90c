"""quanta's batch-production layer: submit configs, clustering, generic workflows and engine plugins."""
