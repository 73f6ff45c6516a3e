"""The public API for plugin authors: everything a pass needs, from one module.

A plugin imports only from here (never a deep `workbench.core...` path), and checks
`API_VERSION` if it depends on something newer. The version's major number changes only
when a name here is removed or changes meaning.
"""

from __future__ import annotations

import logging

from workbench.core.errors import InvalidParameterError, WorkbenchError
from workbench.core.jobs import CancelToken, Progress
from workbench.core.model.fidelity import fidelity_report
from workbench.core.model.sample_inputs import sample_inputs
from workbench.core.model.variant import InputSpec, Variant
from workbench.core.passes.base import (
    Pass,
    PassContext,
    PassError,
    PassOutput,
    PassReport,
    PassResult,
    apply_pass,
    param,
)

log = logging.getLogger(__name__)

API_VERSION = "1.0"

__all__ = ["API_VERSION", "CancelToken", "InputSpec", "InvalidParameterError", "Pass",
           "PassContext", "PassError", "PassOutput", "PassReport", "PassResult", "Progress",
           "Variant", "WorkbenchError", "apply_pass", "fidelity_report", "param",
           "sample_inputs"]
