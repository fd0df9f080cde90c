"""The known keys of a submit YAML, per section, and the ctrl_bps name mappings.

Keys keep ctrl_bps's camelCase spelling. A key that is not listed here is still accepted when some
value of the config refers to it as ``{key}`` (a user-defined variable); anything else is an
unknown key and an error with a "did you mean" hint.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

__all__ = [
    "CLUSTER_DEFINITION_KEYS",
    "CLUSTER_KEYS",
    "COMPAT_KEYS",
    "OTHER_ENGINE_KEYS",
    "FINAL_JOB_KEYS",
    "JOB_KEYS",
    "JOB_PLACEHOLDERS",
    "JOB_SECTION_KEYS",
    "PAYLOAD_KEYS",
    "REFUSED_KEYS",
    "SECTION_KEYS",
    "TOP_KEYS",
    "did_you_mean",
    "is_final_command_key",
    "short_cluster_algorithm",
    "short_site_class",
    "short_wms_name",
]

JOB_PLACEHOLDERS = frozenset({"qgraphNodeId", "qgraphId", "jobName", "label"})
"""``{name}`` variables that stay literal in commands: the engine or transform fills them per job."""

JOB_KEYS = frozenset(
    {
        "requestCpus",
        "requestMemory",
        "requestMemoryMax",
        "memoryMultiplier",
        "memoryLimit",
        "requestDisk",
        "requestWalltime",
        "numberOfRetries",
        "retryUnlessExit",
        "priority",
        "queue",
        "concurrencyLimit",
        "preemptible",
    }
)
"""Per-job resource keys (`bps.workflow.JobResources`); valid at top level and in every section."""

JOB_SECTION_KEYS = JOB_KEYS | {"runQuantumCommand", "environment"}
"""What a ``pipetask.<label>`` section may hold."""

CLUSTER_DEFINITION_KEYS = frozenset(
    {
        "pipetasks",
        "dimensions",
        "equalDimensions",
        "findDependencyMethod",
        "partitionMaxClusters",
        "partitionMaxSize",
    }
)
CLUSTER_KEYS = JOB_SECTION_KEYS | CLUSTER_DEFINITION_KEYS
"""What a ``cluster.<name>`` section may hold."""

PAYLOAD_KEYS = frozenset(
    {"payloadName", "butlerConfig", "inCollection", "dataQuery", "output", "outputRun", "runInit"}
)
"""The ``payload:`` section; its keys are also valid (and looked up) at top level."""

FINAL_JOB_KEYS = JOB_KEYS | {"whenRun", "updateOutputChain", "environment"}
"""The ``finalJob:`` section, plus ``command1`` .. ``commandN``."""

SECTION_KEYS = frozenset({"payload", "cluster", "pipetask", "site", "finalJob", "environment"})
"""Top-level keys whose value is a mapping, merged across layers key by key."""

TOP_KEYS = (
    frozenset(
        {
            "pipelineYaml",
            "qgraphFile",
            "operator",
            "project",
            "campaign",
            "computeSite",
            "wmsServiceClass",
            "submitPath",
            "extraQgraphOptions",
            "extraRunQuantumOptions",
            "extraInitOptions",
            "includeConfigs",
            "clusterAlgorithm",
            "whenSaveJobQgraph",
            "createQuantumGraph",
            "runQuantumCommand",
            "timestamp",
            "uniqProcName",
        }
    )
    | SECTION_KEYS
    | PAYLOAD_KEYS
    | JOB_KEYS
)

_CTRL_BPS_KEYS = frozenset(
    {
        "accountingGroup",
        "accountingUser",
        "bpsUseShared",
        "category",
        "cloud",
        "computeCloud",
        "defaultPreCmdOpts",
        "executionButler",
        "extraUpdateQgraphOptions",
        "finalPreCmdOpts",
        "idLinkPath",
        "initPreCmdOpts",
        "mailTo",
        "makeIdLink",
        "pipetaskDataQuery",
        "pipetaskInput",
        "pipetaskOutput",
        "qgraphFileTemplate",
        "qgraphPreCmdOpts",
        "runPreCmdOpts",
        "saveClusteredQgraph",
        "saveDot",
        "saveGenericWorkflow",
        "subDirTemplate",
        "templateDataId",
        "updateQgraphPreCmdOpts",
        "updateQuantumGraph",
        "useLazyCommands",
        "validateClusteredQgraph",
        "whenToMail",
    }
)

OTHER_ENGINE_KEYS = frozenset(
    {
        # ctrl_bps_parsl
        "parsl",
        "username",
        # ctrl_bps_htcondor
        "attrs",
        "executeMachinesPattern",
        "nodeset",
        "overwriteJobFiles",
        "profile",
        "provisionResources",
        "provisioning",
        "releaseExpr",
        "wmsConfig",
        # ctrl_bps_panda
        "computingCloud",
        "enableEventService",
        "enableQnodeMap",
        "fileDistributionEndPoint",
        "fileDistributionEndPointDefault",
        "maxCopyWorkers",
        "maxJobsPerTask",
        "maxPayloadsPerPandaJob",
        "maxWmsJobWalltime",
        "payloadCommand",
        "processingType",
        "prodSourceLabel",
        "remoteBuild",
        "runnerCommand",
        "s3_endpoint_url",
        "sw_image",
        "vo",
    }
)
"""Keys of ctrl_bps's engine plugins, accepted (without effect) so their submit files load here."""

COMPAT_KEYS = _CTRL_BPS_KEYS | OTHER_ENGINE_KEYS
"""ctrl_bps keys accepted anywhere so existing files load; they have no effect unless used as ``{var}``."""

REFUSED_KEYS = {
    "bpsGenerateConfig": "config text is never executed here (no bpsGenerateConfig/bpsEval); "
    "write the generated values into an included YAML file instead",
}
"""ctrl_bps keys that are refused, with the reason."""

_COMMAND_KEY = re.compile(r"command[1-9][0-9]*\Z")


def is_final_command_key(key: str) -> bool:
    """True for ``command1`` .. ``commandN`` (the final job's commands)."""
    return _COMMAND_KEY.match(key) is not None


def did_you_mean(key: str, known: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the closest known key, or an empty string."""
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    if not close:
        lowered = {k.lower(): k for k in known}
        if key.lower() in lowered:
            close = [lowered[key.lower()]]
    return f"; did you mean {close[0]}?" if close else ""


_CTRL_BPS_WMS = {
    "lsst.ctrl.bps.parsl.ParslService": "parsl",
    "lsst.ctrl.bps.parsl.service.ParslService": "parsl",
    "lsst.ctrl.bps.htcondor.HTCondorService": "htcondor",
    "lsst.ctrl.bps.htcondor.htcondor_service.HTCondorService": "htcondor",
    "lsst.ctrl.bps.panda.PanDAService": "panda",
    "lsst.ctrl.bps.panda.panda_service.PanDAService": "panda",
}


def short_wms_name(name: str) -> str:
    """The engine short name for a ctrl_bps service class path; other names unchanged."""
    if name in _CTRL_BPS_WMS:
        return _CTRL_BPS_WMS[name]
    parts = name.split(".")
    if parts[:4] == ["lsst", "ctrl", "bps", "wms"]:  # the old lsst.ctrl.bps.wms.<engine>... paths
        parts = parts[:3] + parts[4:]
    if len(parts) >= 5 and parts[:3] == ["lsst", "ctrl", "bps"]:
        return parts[3]
    return name


_CTRL_BPS_SITES = {
    "local": "local",
    "slurm": "slurm",
    "tripleslurm": "slurm",
    "workqueue": "work_queue",
    "localsrunworkqueue": "work_queue",
    "threads": "threads",
}


def short_site_class(name: str) -> str:
    """``lsst.ctrl.bps.parsl.sites.Local`` -> ``local`` (and Slurm, WorkQueue); others unchanged."""
    prefix = "lsst.ctrl.bps.parsl.sites."
    if not name.startswith(prefix):
        return name
    last = name.rsplit(".", 1)[-1].lower()
    return _CTRL_BPS_SITES.get(last, last)


_CTRL_BPS_CLUSTERING = {
    "lsst.ctrl.bps.quantum_clustering_funcs.single_quantum_clustering": "single_quantum",
    "lsst.ctrl.bps.quantum_clustering_funcs.dimension_clustering": "dimensions",
}


def short_cluster_algorithm(name: str) -> str:
    """ctrl_bps clustering function paths -> our entry-point short names; others unchanged."""
    return _CTRL_BPS_CLUSTERING.get(name, name)
