"""The pass API and the built-in passes (each registered through the `workbench.passes`
entry-point group, exactly as a third-party plugin is)."""

from workbench.core.passes.base import (
    Pass,
    PassContext,
    PassError,
    PassOutput,
    PassReport,
    PassResult,
    apply_pass,
    param,
    parse_params,
)

__all__ = ["Pass", "PassContext", "PassError", "PassOutput", "PassReport", "PassResult",
           "apply_pass", "param", "parse_params"]
