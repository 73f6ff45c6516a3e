"""The `workbench` command: opens the GUI, or runs a headless subcommand.

`workbench [MODEL]` opens the window; `workbench inspect|screenshot ...` runs headless.
Errors print one line and exit 2; nothing prints a traceback unless WORKBENCH_DEBUG=1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from workbench import __version__
from workbench.cli_device import add_device_option, use_device
from workbench.cli_distributed import add_launch_options, launch, main_only, needs_launch
from workbench.cli_memory import add_memory_option, set_max_memory
from workbench.cli_output import dumps, install_safe_streams, print_json, raw_stderr
from workbench.cli_params import add_param_flags, given
from workbench.cli_zoo import add_zoo_parser
from workbench.core.errors import InvalidParameterError, WorkbenchError
from workbench.core.logs import configure_logging, debug_level
from workbench.core.model.variant import check_input_shape
from workbench.core.train.distributed import is_main_process

log = logging.getLogger(__name__)

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block): `workbench CMD: error: ...`."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a shape such as 1,3,32,32") from None
    if not dims or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError(f"'{text}' is not a shape of positive sizes")
    try:
        return check_input_shape(dims)
    except InvalidParameterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _arch_kwargs(text: str) -> dict[str, Any]:
    from workbench.core.model.arch_spec import parse_arch_kwargs

    try:
        return parse_arch_kwargs(text)
    except InvalidParameterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"'{text}' is not true or false")


def _add_load_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", help="architecture for a state dict: zoo name, or "
                   "pkg.module:Class or pkg.module:function (needs --trust), optionally "
                   "with constructor arguments: NAME?key=value&key2=value2")
    p.add_argument("--arch-kwargs", type=_arch_kwargs, metavar="JSON",
                   help='constructor keyword arguments of --arch, a JSON object of plain '
                   'values, such as \'{"aux_logits": false}\'')
    p.add_argument("--strict", type=_bool, metavar="true|false",
                   help="false: load the tensors of a state dict that match by name and "
                   "shape, and list the rest (default: true, everything must fit)")
    p.add_argument("--trust", action="store_true",
                   help="allow loading a full pickle (can run code: only for files you trust)")
    p.add_argument("--input-shape", type=_shape, metavar="N,C,H,W",
                   help="input shape, batch first (for zoo models and bare modules)")
    p.add_argument("--num-classes", type=int, metavar="N", help="class count of a zoo model")


def _load_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.num_classes is not None and args.num_classes < 1:
        raise InvalidParameterError("--num-classes must be at least 1.")
    options = {"arch": args.arch, "trust": args.trust, "input_shape": args.input_shape,
               "num_classes": args.num_classes, "arch_kwargs": args.arch_kwargs}
    if args.strict is False:
        options["strict"] = False
    return options


def _check_output(path: str) -> None:
    """Refuse an output path before any long work: an unknown extension, or a target that
    is not a regular file (a device, a folder) or cannot be written."""
    from workbench.core.fileio import check_target
    from workbench.core.model.export import export_format

    export_format(path)
    check_target(path)


def _progress_printer(enabled: bool) -> Callable[[Any], None]:
    def show(step: Any) -> None:
        if enabled and sys.stderr.isatty():
            frac = step.fraction if step.fraction is not None else 0.0
            bar = "#" * int(frac * 20)
            raw_stderr().write(f"\r[{bar:<20}] {step.message[:60]:<60}")
            raw_stderr().flush()
            if frac >= 1.0:
                raw_stderr().write("\n")
    return show


def cmd_inspect(args: argparse.Namespace) -> int:
    from workbench.core.graph.display_graph import gc_paused

    with gc_paused():  # a short run of many small acyclic objects: collections only cost
        return _inspect(args)


def _inspect(args: argparse.Namespace) -> int:
    from workbench.core.graph.inspection import inspect_model
    from workbench.core.jobs import run_job

    analysis = run_job(inspect_model(args.model, args.stats, **_load_options(args)),
                       _progress_printer(not args.json))
    summary = analysis.graph.summary()
    summary["source"] = args.model
    load_warnings = list(analysis.variant.metadata.get("load_warnings", []))
    if load_warnings:
        summary["load_warnings"] = load_warnings
    if analysis.stats is not None:
        summary["weights"] = analysis.stats.to_json()
    if args.json:
        print_json(summary)
        return 0
    print(f"{args.model}  ({summary['format']})")
    print(f"  nodes {summary['nodes']:,}   edges {summary['edges']:,}")
    print(f"  parameters {summary['parameters']:,}   size {_bytes(summary['size_bytes'])}"
          f"   MACs {summary['macs']:,}")
    for t in summary["inputs"]:
        print(f"  input  {t['name']}: {t['shape']} {t['dtype'] or ''}")
    ops = ", ".join(f"{op}×{n}" for op, n in list(summary["op_counts"].items())[:12])
    print(f"  ops    {ops}")
    if analysis.stats is not None:
        s = analysis.stats.summary
        print(f"  weights min {s.min:.4g} max {s.max:.4g} mean {s.mean:.4g} std {s.std:.4g} "
              f"sparsity {s.sparsity:.1%}")
    for w in summary["warnings"]:
        print(f"  warning: {w}")
    for w in load_warnings:
        print(f"  load warning: {w}")
    return 0


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{n} B"


def cmd_screenshot(args: argparse.Namespace) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from workbench.gui.screenshot import render_screenshot

    size = _shape(args.size) if args.size else (1400, 900)
    if len(size) != 2:
        raise InvalidParameterError("--size takes WIDTHxHEIGHT, such as 1400x900.")
    render_screenshot(args.model, args.tab, args.output, size=(size[0], size[1]),
                      load_options=_load_options(args), select=args.select,
                      theme=args.theme)
    if args.json:
        print_json({"output": args.output, "tab": args.tab})
    else:
        print(f"wrote {args.output}")
    return 0


def cmd_passes(args: argparse.Namespace) -> int:
    from workbench.core.passes.registry import discover

    registry = discover()
    if args.json:
        data = [{**p.pass_cls.describe(), "origin": p.origin} for p in registry.plugins
                if p.pass_cls is not None]
        failed = [{"entry_point": p.entry_point, "origin": p.origin, "error": p.error}
                  for p in registry.failed]
        print_json({"passes": data, "failed": failed})
        return 0
    for category, passes in registry.by_category().items():
        print(f"{category}:")
        for cls in passes:
            print(f"  {cls.name:<24} {cls.title}  [{', '.join(cls.backends)}]")
            for spec in cls.param_specs():
                rng = ""
                if spec.choices:
                    rng = " {" + "|".join(map(str, spec.choices)) + "}"
                elif spec.min is not None or spec.max is not None:
                    lo = "" if spec.min is None else spec.min
                    hi = "" if spec.max is None else spec.max
                    rng = f" [{lo}..{hi}]"
                print(f"      {spec.name}={spec.default!r}{rng}  {spec.help}")
    for p in registry.failed:
        print(f"failed: {p.entry_point} ({p.origin}): {p.error}")
    return 0


def _parse_param_args(items: list[str]) -> dict[str, str]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidParameterError(f"--param takes key=value, not '{item}'.")
        params[key.strip()] = value.strip()
    return params


def cmd_apply(args: argparse.Namespace) -> int:
    from workbench.core.passes.base import parse_params
    from workbench.core.passes.registry import discover
    from workbench.core.session.recipe import Recipe
    from workbench.core.session.session import Session

    _check_output(args.output)  # fail early: unknown extension, or a target we refuse
    params = _parse_param_args(args.param)
    parse_params(type(discover().get(args.pass_id)), params)  # and a bad pass or parameter
    session = use_device(Session(remember_recent=False), args)
    set_max_memory(session, args)
    progress = _progress_printer(not args.json)
    session.run(session.open(args.source, **_load_options(args)), progress)
    result = session.run(session.apply(args.pass_id, params, device=args.device,
                                       time_limit_s=args.time_limit), progress)
    written = session.run(session.export(args.output, opset=args.opset))
    report = result.report.to_json()
    report["output"] = written["output"]
    if args.recipe:
        Recipe.of(result.variant).save(args.recipe)
        report["recipe"] = args.recipe
    if args.json:
        print_json(report)
        return 0
    b, a = report["before"], report["after"]
    print(f"{report['pass']} on {args.source} ({report['seconds']:.2f} s)")
    for key in ("parameters", "size_bytes", "macs", "sparsity"):
        print(f"  {key:<11} {b[key]:>14,} -> {a[key]:>14,}" if key != "sparsity" else
              f"  {key:<11} {b[key]:>14.1%} -> {a[key]:>14.1%}")
    fid = report["details"].get("fidelity")
    if isinstance(fid, dict) and "cosine" in fid:
        from workbench.core.model.fidelity import fidelity_text

        print(f"  fidelity    {fidelity_text(fid)}")
    lat = report["details"].get("latency")
    if isinstance(lat, dict):
        print(f"  latency     {lat['parent_ms']:.3f} ms -> {lat['child_ms']:.3f} ms "
              f"({lat['speedup']:.2f}x, {lat['threads']} threads)")
    if isinstance(report["details"].get("table"), str):
        print("  " + report["details"]["table"].replace("\n", "\n  "))
    for w in report["warnings"]:
        print(f"  warning: {w}")
    print(f"wrote {written['output']}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    session = _session()
    set_max_memory(session, args)
    session.run(session.open(args.source, **_load_options(args)))
    written = session.run(session.export(args.output, fmt=args.format, opset=args.opset))
    if args.recipe:
        session.recipe().save(args.recipe)
        written["recipe"] = args.recipe
    print(dumps(written) if args.json else f"wrote {written['output']}")
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    """`workbench project ls FOLDER [--json]`: the variants of a project, with lineage, and
    its interrupted training runs; `workbench project resume FOLDER [RUN]` resumes one."""
    from workbench.core.session.project import project_summary

    if args.action == "resume":
        return _project_resume(args)
    if args.run:
        raise InvalidParameterError("`project ls` takes no run id.")
    summary = project_summary(args.folder)
    if args.json:
        print_json(summary)
        return 0
    print(f"{args.folder}  (schema {summary['schema_version']})")
    for v in summary["variants"]:
        parent = f" <- {v['parent']}" if v.get("parent") else ""
        print(f"  {v['id']:<6} {v['name'][:40]:<40} {v['backend']:<5} {v['format']:<12} "
              f"{_bytes(v.get('bytes') or 0):>10}{parent}")
    for r in summary["interrupted_runs"]:
        at = f"epoch {r['epoch']} of {r['epochs']}" if r["epoch"] else "before epoch 1"
        hint = "resumable" if r["resumable"] else "not resumable"
        print(f"  interrupted {r['kind']} run {r['id']} of {r['variant_id']} at {at} "
              f"({hint})")
    return 0


def _project_resume(args: argparse.Namespace) -> int:
    """Resume an interrupted training run; the trained variant is saved in the project."""
    from workbench.core.session.session import Session

    session = use_device(Session(remember_recent=False), args)
    project = session.open_project(args.folder)
    try:
        interrupted = session.interrupted_runs()
        run_id = args.run or (interrupted[0].id if len(interrupted) == 1 else None)
        entry = session.run(session.resume_run(run_id), _train_progress(not args.json))
    finally:
        project.close()
    accuracy = entry.results.get("accuracy")
    out = {"run": run_id, "variant": entry.id,
           "parent": entry.analysis.variant.parent, "name": entry.name,
           "test_accuracy": accuracy, "history": entry.results.get("history"),
           "project": str(project.folder)}
    if args.json:
        print_json(out)
    else:
        acc = f"{accuracy:.4f}" if accuracy is not None else "n/a"
        print(f"resumed: {entry.name} ({entry.id}) test accuracy {acc}, saved in "
              f"{args.folder}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """`workbench run RECIPE`: replay with progress on stderr, then the comparison table."""
    from workbench.core.events import EpochDone
    from workbench.core.measure.compare import to_markdown
    from workbench.core.model.export import export_variant
    from workbench.core.session.recipe import Recipe
    from workbench.core.session.recipe_replay import StepStarted, run_recipe
    from workbench.core.session.session import Session

    recipe = Recipe.load_file(args.recipe)
    if args.output:
        _check_output(args.output)
    if needs_launch(args):  # every training step of the recipe, data-parallel
        return launch(args, args.argv)
    session = use_device(Session(remember_recent=False), args)

    def show(p: Any) -> None:
        if isinstance(p.payload, StepStarted):
            indent = "  " * p.payload.depth + ("teacher " if p.payload.depth else "")
            print(f"{indent}[{p.payload.index + 1}/{p.payload.total}] {p.payload.summary}",
                  file=sys.stderr)
        elif isinstance(p.payload, EpochDone):
            e = p.payload
            acc = f" · val accuracy {e.val_accuracy:.3f}" if e.val_accuracy is not None else ""
            print(f"    epoch {e.epoch} · loss {e.train_loss:.4f}{acc}", file=sys.stderr)

    from pathlib import Path

    start = Path(args.start_weights) if args.start_weights else None
    run = run_recipe(session, recipe, main_only(show), trust=args.trust,
                     start_weights=start)
    if not is_main_process():  # under torchrun: rank 0 alone prints and writes
        return 0
    rows = session.compare()
    out: dict[str, Any] = {"steps": run.steps, "variants": run.variant_ids,
                           "comparison": [r.to_json() for r in rows]}
    if args.output and run.variant is not None:
        out.update(export_variant(run.variant, args.output, opset=args.opset))
    if args.json:
        print_json(out)
        return 0
    print(to_markdown(rows), end="")
    if args.output:
        print(f"wrote {out['output']}")
    return 0


def _add_train_options(p: argparse.ArgumentParser) -> None:
    from workbench.core.train.training import train_param_specs

    p.add_argument("--data", required=True,
                   help="digits, synthetic, synthetic:regression, an image folder, .npz or .csv")
    add_param_flags(p, train_param_specs())
    add_device_option(p)
    add_launch_options(p)
    p.add_argument("--checkpoint-dir", help="write last.pt/best.pt here every epoch")
    p.add_argument("--resume", action="store_true", help="resume from --checkpoint-dir")
    p.add_argument("--json", action="store_true")


def _train_config(args: argparse.Namespace) -> Any:
    from workbench.core.train.training import TrainConfig, train_param_specs

    return TrainConfig.parse(given(args, train_param_specs()), device=args.device,
                             checkpoint_dir=args.checkpoint_dir, resume=args.resume,
                             strategy=args.strategy)


def _train_progress(enabled: bool) -> Callable[[Any], None]:
    from workbench.core.events import BatchDone, EpochDone

    def show(step: Any) -> None:
        if not enabled or not is_main_process():
            return
        event = step.payload
        if isinstance(event, EpochDone):
            acc_text = (f" val_acc {event.val_accuracy:.4f}"
                        if event.val_accuracy is not None else "")
            print(f"epoch {event.epoch:>3}  train_loss {event.train_loss:.4f}  "
                  f"val_loss {event.val_loss:.4f}{acc_text}  lr {event.lr:.2e}",
                  file=sys.stderr)
        elif isinstance(event, BatchDone) and sys.stderr.isatty():
            frac = step.fraction or 0.0
            raw_stderr().write(f"\r[{'#' * int(frac * 30):<30}] {step.message} "
                               f"ETA {event.eta_s:.0f}s ")
            raw_stderr().flush()
    return show


def cmd_train(args: argparse.Namespace) -> int:
    _check_output(args.output)
    cfg = _train_config(args)
    if needs_launch(args):
        return launch(args, args.argv)
    session = _session(args)
    session.run(session.open(args.source, **_load_options(args)))
    entry = session.run(session.train(args.data, cfg), _train_progress(not args.json))
    if not is_main_process():  # a distributed run: rank 0 alone writes and prints
        return 0
    written = session.run(session.export(args.output, entry.id))
    summary = entry.results.get("training", {})
    out = {"test_accuracy": entry.results.get("accuracy"),
           "test_loss": summary.get("test_loss"), "history": entry.results.get("history", []),
           "best_epoch": summary.get("best_epoch"),
           "early_stopped": summary.get("early_stopped"), "output": written["output"]}
    if args.json:
        print_json(out)
    else:
        acc = f"{out['test_accuracy']:.4f}" if out["test_accuracy"] is not None else "n/a"
        print(f"test accuracy {acc}  test loss {out['test_loss']:.4f}  "
              f"(best epoch {out['best_epoch']})")
        print(f"wrote {written['output']}")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    _check_output(args.output)
    cfg = _train_config(args)
    if needs_launch(args):
        return launch(args, args.argv)
    session = _session(args)
    show = _train_progress(not args.json)
    teacher = session.run(session.open(args.teacher, trust=args.trust, input_shape=(
        args.input_shape if args.teacher.startswith("zoo:") else None)))
    shape = args.input_shape or (teacher.analysis.variant.inputs[0].shape
                                 if teacher.analysis.variant.inputs else None)
    student = session.run(session.open(args.student, **{**_load_options(args),
                                                        "input_shape": shape}))
    s_inputs, t_inputs = student.analysis.variant.inputs, teacher.analysis.variant.inputs
    if t_inputs and s_inputs and t_inputs[0].shape != s_inputs[0].shape:
        raise InvalidParameterError("Teacher and student must take the same input shape.")
    if args.train_teacher:
        teacher = session.run(session.train(args.data, cfg, teacher.id), show)
    teacher_acc = session.run(session.evaluate(args.data, teacher.id, seed=cfg.seed)).accuracy
    baseline = session.run(session.train(args.data, cfg, student.id), show)
    result = session.run(session.distill(args.data, cfg, teacher.id, args.temperature,
                                         args.alpha, args.transfer, student.id), show)
    if not is_main_process():
        return 0
    written = session.run(session.export(args.output, result.id))

    out = {"teacher_accuracy": teacher_acc,
           "student_accuracy": result.results.get("accuracy"),
           "baseline_student_accuracy": baseline.results.get("accuracy"),
           "teacher_parameters": _parameters(teacher),
           "student_parameters": _parameters(student), "output": written["output"]}
    if args.json:
        print_json(out)
    else:
        for k, v in out.items():
            print(f"{k:<28} {v}")
    return 0


def _parameters(entry: Any) -> int | None:
    variant = entry.analysis.variant
    return sum(p.numel() for p in variant.model.parameters()) \
        if variant.backend == "torch" else None


def cmd_eval(args: argparse.Namespace) -> int:
    session = _session(args)
    entry = session.run(session.open(args.source, **_load_options(args)))
    if args.against:
        reference = session.run(session.open(args.against, trust=args.trust))
        from workbench.core.model.fidelity import fidelity_text

        report = session.run(session.fidelity(reference.id, entry.id, args.samples)).report
        print(dumps(report) if args.json else
              f"{fidelity_text(report)}  ({report['samples']} {report.get('inputs', '')} "
              "samples)")
        for w in report.get("warnings", []):
            print(f"warning: {w}", file=sys.stderr)
        return 0
    if not args.data:
        raise InvalidParameterError("Give --data DATASET, or --against REFERENCE for "
                                    "embedding models.")
    result = session.run(session.evaluate(args.data, entry.id, args.seed, args.split))
    out = {"accuracy": result.accuracy, "loss": result.loss, "top5": result.top5,
           "samples": result.samples, "split": args.split}
    if args.confusion:
        out["confusion"] = result.confusion
    if args.json:
        print_json(out)
    else:
        acc = f"{result.accuracy:.4f}" if result.accuracy is not None else "n/a"
        print(f"accuracy {acc}  loss {result.loss:.4f}  ({result.samples} {args.split} samples)")
    return 0


def _bench_config(args: argparse.Namespace, variant: Any) -> Any:
    from workbench.core.measure.benchmark import BenchConfig
    from workbench.core.params import param_specs

    cfg = BenchConfig.parse(given(args, param_specs(BenchConfig)), device=args.device)
    if cfg.runtime == "auto":
        cfg.runtime = cfg.resolved_runtime(variant)
    return cfg


def _add_bench_options(p: argparse.ArgumentParser) -> None:
    from workbench.core.measure.benchmark import BenchConfig
    from workbench.core.params import param_specs

    add_param_flags(p, param_specs(BenchConfig),
                    aliases={"batch_sizes": "--batch", "duration_s": "--duration"})
    add_device_option(p)


def cmd_bench(args: argparse.Namespace) -> int:
    session = _session(args)
    entry = session.run(session.open(args.source, **_load_options(args)))
    result = session.run(session.benchmark(_bench_config(args, entry.analysis.variant)))
    records = [r.to_json() for r in result.records]
    keys = ("runtime", "device", "batch", "mean_ms", "p50_ms", "p90_ms", "p99_ms",
            "throughput")
    if args.json:
        out = [{k: r[k] for k in keys} | {"std_ms": r.get("std_ms"), "noisy": r.get("noisy")}
               for r in records]
        print_json(out)
        return 0
    print(f"{'runtime':<14}{'device':<7}{'batch':>6}{'mean ms':>10}{'p50 ms':>10}"
          f"{'p90 ms':>10}{'p99 ms':>10}{'samples/s':>12}")
    for r in result.records:
        print(f"{r.runtime:<14}{r.device:<7}{r.batch:>6}{r.mean_ms:>10.3f}{r.p50_ms:>10.3f}"
              f"{r.p90_ms:>10.3f}{r.p99_ms:>10.3f}{r.throughput:>12,.1f}"
              + (f"  ⚠ {r.warning}" if r.noisy else ""))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from workbench.core.measure.compare import to_csv, to_markdown

    session = _session(args)
    for source in args.models:
        entry = session.run(session.open(source, **_load_options(args)))
        session.rename(source, entry.id)
        if args.data:
            session.run(session.evaluate(args.data, entry.id, seed=args.seed))
        session.run(session.benchmark(_bench_config(args, entry.analysis.variant), entry.id))
    rows = session.compare(baseline_id=session.workspace.entries()[0].id)
    if args.json:
        print_json([r.to_json() for r in rows])
    elif args.format == "csv":
        print(to_csv(rows), end="")
    else:
        print(to_markdown(rows), end="")
    return 0


def _session(args: argparse.Namespace | None = None) -> Any:
    """A headless Session for one command (it does not touch the recent-files list); its
    jobs run on the command's `--device`, if it has one."""
    from workbench.core.session.session import Session

    session = Session(remember_recent=False)
    return use_device(session, args) if getattr(args, "device", None) else session


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="workbench", description="Inspect and optimize neural networks.")
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("inspect", help="print a model's graph summary")
    p.add_argument("model", help="model file or zoo:NAME")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--stats", action="store_true", help="include weight statistics")
    _add_load_options(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("screenshot", help="render the window offscreen to a PNG")
    p.add_argument("model", help="model file or zoo:NAME")
    p.add_argument("--tab", choices=("graph", "weights", "train", "benchmark", "compare"),
                   default="graph")
    p.add_argument("-o", "--output", required=True, help="PNG file to write")
    p.add_argument("--size", help="window size WIDTHxHEIGHT (default 1400x900)")
    p.add_argument("--select", help="node to select before the shot")
    p.add_argument("--theme", choices=("light", "dark"), default="light",
                   help="colour theme of the shot (default light)")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_load_options(p)
    p.set_defaults(func=cmd_screenshot)

    p = sub.add_parser("passes", help="list the optimization passes and their parameters")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_passes)

    p = sub.add_parser("apply", help="apply a pass and write the new variant")
    p.add_argument("source", help="model file or zoo:NAME")
    p.add_argument("pass_id", metavar="PASS", help="pass name, e.g. prune.magnitude")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a pass parameter (repeatable)")
    p.add_argument("-o", "--output", required=True,
                   help="output file: .onnx, .pt2, .ts/.pt (TorchScript) or .safetensors")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset for .onnx output")
    p.add_argument("--recipe", help="also write the recipe (JSON) that replays this")
    add_device_option(p)
    p.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help="abandon the pass after this many seconds")
    add_memory_option(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_load_options(p)
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("export", help="write a model as ONNX, .pt2, TorchScript or safetensors")
    p.add_argument("source", help="model file or zoo:NAME")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--format", choices=("onnx", "pt2", "torchscript", "safetensors"))
    p.add_argument("--opset", type=int, default=18)
    add_memory_option(p)
    p.add_argument("--recipe", help="also write the recipe (JSON)")
    p.add_argument("--json", action="store_true")
    _add_load_options(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("train", help="train or fine-tune a torch model")
    p.add_argument("source", help="model file or zoo:NAME")
    p.add_argument("-o", "--output", required=True, help="trained model (.pt2, .ts, .onnx, "
                   ".safetensors)")
    _add_train_options(p)
    _add_load_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("distill", help="distill a teacher into a student")
    p.add_argument("--teacher", required=True, help="teacher model (any variant, ONNX too)")
    p.add_argument("--student", required=True, help="student model (zoo:NAME or file)")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--temperature", type=float, default=4.0)
    p.add_argument("--alpha", type=float, default=0.7, help="weight of the KL term")
    p.add_argument("--transfer", action="store_true",
                   help="initialise the student from the teacher's matching tensors")
    p.add_argument("--train-teacher", action="store_true",
                   help="train the teacher on the data first (for untrained zoo teachers)")
    _add_train_options(p)
    _add_load_options(p)
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("eval", help="evaluate a model on a dataset (or against a reference)")
    p.add_argument("source", help="model file or zoo:NAME")
    p.add_argument("--data", help="dataset: digits, synthetic, a folder, .npz or .csv")
    p.add_argument("--against", metavar="REFERENCE",
                   help="fidelity against a reference model (for embedding models)")
    p.add_argument("--samples", type=int, default=24, help="samples for --against")
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--confusion", action="store_true", help="include the confusion matrix")
    add_device_option(p)
    p.add_argument("--json", action="store_true")
    _add_load_options(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="measure latency and throughput")
    p.add_argument("source", help="model file or zoo:NAME")
    p.add_argument("--json", action="store_true")
    _add_bench_options(p)
    _add_load_options(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("compare", help="compare models: size, MACs, accuracy, latency")
    p.add_argument("models", nargs="+", help="model files or zoo names; the first is the "
                   "baseline for speed-ups")
    p.add_argument("--data", help="dataset for accuracy (e.g. digits)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=("markdown", "csv"), default="markdown")
    p.add_argument("--json", action="store_true")
    _add_bench_options(p)
    _add_load_options(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("project", help="look into a project folder, resume its training")
    p.add_argument("action", choices=("ls", "resume"),
                   help="ls: the variants, what is measured and interrupted training runs; "
                   "resume: continue an interrupted training run from its last checkpoint")
    p.add_argument("folder", help="a project folder (made by File ▸ Save as Project)")
    p.add_argument("run", nargs="?", help="resume: the run id (default: the only "
                   "interrupted run)")
    add_device_option(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_project)

    p = sub.add_parser("run", help="replay a recipe headless")
    p.add_argument("recipe", help="recipe (YAML or JSON) written by the GUI, `apply --recipe`"
                   " or by hand")
    p.add_argument("-o", "--output", help="write the final variant here")
    p.add_argument("--opset", type=int, default=18)
    p.add_argument("--trust", action="store_true",
                   help="allow a pickled source (never read from the recipe itself)")
    add_device_option(p)
    add_launch_options(p, strategy=False)
    # the window's launched workers: weights to load before the first training step
    p.add_argument("--start-weights", help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_run)

    add_zoo_parser(sub)
    return parser


def cmd_doctor(removed: list[Any], as_json: bool) -> int:
    """`workbench doctor [--json]`: the machine, and the stale temporary files removed."""
    from workbench.core.fileio import journal_dir
    from workbench.core.session.about import about

    report = {**about(), "removed_temp_files": [str(p) for p in removed],
              "temp_journal": str(journal_dir())}
    if as_json:
        print_json(report)
        return 0
    cpu = report["cpu"]
    print(f"workbench {report['workbench']} on Python {report['python']}, {report['platform']}")
    print(f"  CPU {cpu['model'] or cpu['machine']}: int8 weights "
          f"{'7-bit' if cpu['int8_reduce_range'] else '8-bit'} ({cpu['int8_reason']})")
    for name, version in report["packages"].items():
        print(f"  {name} {version or 'not installed'}")
    print(f"  settings in {report['folders']['config']}, runs in {report['folders']['runs']}")
    print(f"  removed {len(removed)} stale temporary file(s)"
          + "".join(f"\n    {p}" for p in report["removed_temp_files"]))
    return 0


def cmd_version(as_json: bool) -> int:
    """`workbench --version [--json]`: the version, or everything a bug report needs."""
    from workbench.core.session.about import about, version_line

    if not as_json:
        print(version_line())
        return 0

    print_json(about())
    return 0


def build_gui_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="workbench", description="Open the Workbench window, optionally on a model. "
        "Headless commands: inspect, screenshot (see workbench inspect --help).")
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    parser.add_argument("model", nargs="?", help="model file or zoo:NAME to open")
    _add_load_options(parser)
    return parser


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse, turning argparse's exit (on --help or a bad argument) into a return code."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:
        raise _Exit(exc.code if isinstance(exc.code, int) else EXIT_USAGE) from None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    install_safe_streams()
    configure_logging()
    from workbench.core.fileio import clean_stale_temp_files

    removed = clean_stale_temp_files()  # left behind by a killed run; never raises
    if argv and argv[0] == "open":  # `workbench open PROJECT|MODEL`: the window, on it
        argv = argv[1:]
    if argv and argv[0] == "doctor":
        return cmd_doctor(removed, "--json" in argv[1:])
    if argv and argv[0] == "--version":
        return cmd_version("--json" in argv[1:])
    commands = {"inspect", "screenshot", "passes", "apply", "export", "run", "train", "project",
                "distill", "eval", "bench", "compare", "zoo"}
    try:
        if argv and (argv[0] in commands or argv[0] in ("-h", "--help")):
            args = _parse(build_parser(), argv)  # not for the window: it imports much
            args.argv = argv  # what --nproc hands to the launcher
            return int(args.func(args))
        gui_args = _parse(build_gui_parser(), argv)
        from workbench.gui.app import run_app

        return run_app(gui_args.model, _load_options(gui_args))
    except _Exit as exc:
        return exc.code
    except WorkbenchError as exc:
        print(f"workbench: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print("workbench: error: out of memory: the model or its inputs are too large for "
              "this machine.", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("workbench: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if debug_level() is not None:
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"workbench: internal error: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
