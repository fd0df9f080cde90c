"""The Parsl engine (``wmsServiceClass: parsl``): a detached driver runs the workflow with Parsl.

Only `plugins.parsl.parsl_adapter` imports Parsl; the job wrapper imports nothing heavy.
"""
