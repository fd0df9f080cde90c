"""quanta's pipeline layer: tasks, pipelines, quantum graphs and their executors (arrives with later issues)."""
