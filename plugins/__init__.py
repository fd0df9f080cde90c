"""Workflow-engine plugins (htcondor, parsl, panda), found through the ``quanta.wms`` entry-point group."""
