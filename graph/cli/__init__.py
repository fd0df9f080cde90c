"""Command-line interfaces of the pipeline layer: ``pipetask`` (`pipetask.main`) and ``butler`` subcommands.

Kept free of imports so that loading one ``butler`` subcommand does not import every command.
"""
