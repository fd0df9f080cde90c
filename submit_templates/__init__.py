"""Data only: bps defaults, engine templates and example pipelines shipped with quanta."""
