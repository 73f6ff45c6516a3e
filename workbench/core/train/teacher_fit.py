"""Which variants can teach a student: the same inputs, and as many classes out.

Distillation feeds the teacher the student's data, shaped for the student, and matches the
two models' logits class by class; a teacher that fits neither cannot teach.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.core.graph.analysis import Analysis


def teacher_misfit(student: Analysis, teacher: Analysis) -> str | None:
    """Why `teacher` cannot teach `student`, in a sentence; None when it can."""
    name = teacher.variant.name
    s_in, t_in = student.variant.inputs, teacher.variant.inputs
    if s_in and t_in:
        s_sig = [(tuple(i.shape[1:]), i.dtype) for i in s_in]
        t_sig = [(tuple(i.shape[1:]), i.dtype) for i in t_in]
        if s_sig != t_sig:
            return (f"{name} takes {_inputs_text(t_in)} inputs; the student takes "
                    f"{_inputs_text(s_in)}.")
    s_out, t_out = _logits_shape(student), _logits_shape(teacher)
    if s_out is not None and t_out is not None and s_out != t_out:
        return (f"{name} outputs {_outputs_text(t_out)}; the student outputs "
                f"{_outputs_text(s_out)}.")
    return None


def _logits_shape(analysis: Analysis) -> tuple[Any, ...] | None:
    """The first output's shape without the batch (None if unknown or not a fixed size)."""
    outputs = analysis.graph.outputs
    shape = outputs[0].shape if outputs else None
    if shape is None or not shape or not all(isinstance(d, int) for d in shape[1:]):
        return None
    return tuple(shape[1:])


def _inputs_text(inputs: Any) -> str:
    return ", ".join("×".join(str(d) for d in i.shape[1:]) + f" {i.dtype}" for i in inputs)


def _outputs_text(shape: tuple[Any, ...]) -> str:
    return f"{shape[0]} classes" if len(shape) == 1 else "×".join(map(str, shape))
