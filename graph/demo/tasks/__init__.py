"""DemoCam's PipelineTasks: step 1 (isr, calibrate, consolidateVisitSummary) and step 2 (makeWarp, assembleCoadd, detectCoadd).

Each task only calls the pure algorithms in `graph.demo.processing`; the pipeline is
``submit_templates/examples/demo_pipeline.yaml``. The package imports nothing itself, so a batch job
running one task loads only that task's module (import e.g. `graph.demo.tasks.isr.IsrTask`).
"""
