"""The command line of an experiment, generated from its config.

    if __name__ == "__main__":
        experiment.main(__name__)

Every config field is a flag; ``--protocol quick|default|author`` applies one of the
experiment's presets (``--quick`` is ``--protocol quick``; explicit flags override it);
``--resume RUN_DIR`` continues a run from its checkpoint with its saved config,
refusing flags that contradict it. Every bad value is an argparse error (exit 2) before
anything runs, and the output folder is checked before training.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from . import checkpoint, rundir
from .config import ConfigError, flag, from_saved, parse_value
from .protocol import PROTOCOLS, Experiment, load
from .run import check_resume


def build_parser(exp: Experiment) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"{exp.name}.py", description=exp.description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults, quick, author = exp.Config(), exp.quick, exp.preset("author")
    for f in dataclasses.fields(exp.Config):
        meta = f.metadata
        default = getattr(defaults, f.name)
        note = (f"default: {_show(default)}" + (f"; --quick: {_show(quick[f.name])}" if f.name in quick else "")
                + (f"; --protocol author: {_show(author[f.name])}" if f.name in author else ""))
        kwargs = {"default": argparse.SUPPRESS, "help": f"{meta.get('help', '')} ({note})".strip()}
        if isinstance(default, bool) and not meta.get("choices"):
            p.add_argument(flag(f.name), action=argparse.BooleanOptionalAction, **kwargs)
            continue
        kwargs["type"] = _converter(exp.Config, f.name)
        if meta.get("choices") and isinstance(default, tuple):  # a list of choices: checked element by element
            kwargs["help"] += f"; a comma-separated list of {', '.join(meta['choices'])}"
            kwargs["metavar"] = kwargs.get("metavar") or f.name.upper()
        elif meta.get("choices"):
            kwargs["choices"] = meta["choices"]
        if meta.get("metavar"):
            kwargs["metavar"] = meta["metavar"]
        p.add_argument(flag(f.name), **kwargs)
    p.add_argument("--quick", action="store_true", help=f"the quick preset: {_describe(quick)}")
    p.add_argument("--protocol", choices=PROTOCOLS, default=None,
                   help=f"the preset to start from: quick (as --quick), default, or author, the seed author's "
                        f"whole protocol: {_describe(author, 'the default')}")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the run saved in RUN_DIR with its settings (flags that would change "
                        "its results are refused)")
    return p


def _show(value) -> str:
    """A value as it is written on the command line."""
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _describe(preset: dict, otherwise: str = "(none: the default is quick)") -> str:
    return ", ".join(f"{flag(k)} {_show(v)}" for k, v in preset.items()) or otherwise


def _converter(cls, name):
    def convert(text):
        try:
            return parse_value(cls, name, text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None
    convert.__name__ = name  # argparse names the type in its messages
    return convert


def parse_args(exp: Experiment, argv=None):
    """(config, resume) from the command line; exits 2 with a message naming the flag on any
    bad value, before anything is written."""
    p = build_parser(exp)
    args = vars(p.parse_args(argv))
    resume, quick, protocol = args.pop("resume"), args.pop("quick"), args.pop("protocol")
    if quick and protocol not in (None, "quick"):
        p.error(f"--quick: not with --protocol {protocol} (--quick is --protocol quick)")
    protocol = "quick" if quick else protocol or "default"
    try:
        if resume:
            if quick or protocol != "default":
                p.error(f"--{'quick' if quick else 'protocol'}: not with --resume (the run keeps the settings it "
                        "was started with)")
            config = _resumed_config(exp, Path(resume), args)
        else:
            config = exp.config(protocol=protocol, **args)
        config.check()
        if not resume:
            rundir.check_output(config.out or rundir.default_path(exp.name))
    except ConfigError as exc:
        p.error(str(exc))
    except (checkpoint.CheckpointError, rundir.OutputError) as exc:
        p.error(f"{'--resume' if resume else '--out'}: {exc}")
    return config, bool(resume)


def _resumed_config(exp: Experiment, folder: Path, given: dict):
    rundir.check_output(folder, resume=True)
    path = folder / rundir.CHECKPOINT
    if (folder / "checkpoint.json").exists() and not path.exists():
        raise checkpoint.CheckpointError(f"{folder} holds a two-file checkpoint (checkpoint.npz + checkpoint.json) "
                                         "of an earlier minibn, whose two halves may come from different steps; "
                                         "it cannot be resumed safely: start the run again")
    saved = checkpoint.load(path)
    if "out" in given:
        if Path(given["out"]).resolve() != folder.resolve():
            raise ConfigError("out", f"{given['out']} is not the folder of the run being resumed, {folder}")
        del given["out"]
    try:
        config = from_saved(exp.Config, {**saved["config"], **given, "out": str(folder)})
    except (TypeError, ValueError) as exc:
        raise checkpoint.CheckpointError(f"{path}: {exc}") from None
    check_resume(exp.name, config, saved, path)
    return config


def main(spec, argv=None) -> dict:
    """Parse the command line of experiment ``spec`` (a module, its name, or ``__name__`` of the
    script calling it), run it, print its summary, its notes, every verdict and every file it
    wrote; return its metrics."""
    exp = load(sys.modules["__main__"] if spec == "__main__" else spec)
    config, resume = parse_args(exp, argv)
    metrics = exp.run(config, resume=resume)
    print(report(exp, metrics))
    return metrics


def report(exp: Experiment, metrics: dict) -> str:
    """The experiment's summary and notes, its claims with their verdicts, and the files written."""
    lines = [exp.summary(metrics)]
    for c in metrics.get("claims", []):
        lines.append(f"{c['verdict']:>14}  {c['id']}: {c['claim']}")
    lines.extend(f"wrote {p}" for p in metrics.get("files", []))
    lines.extend(f"FAILED figure {name}: {error}" for name, error in metrics.get("figure_errors", {}).items())
    return "\n".join(line for line in lines if line)
