"""`factory train`: train one model on a dataset in this process, with no Redis.

The job id hashes (dataset id, model, horizon, resolved params); checkpoints live under
`<home>/checkpoints/<job_id>/`, so the same command run again after a kill resumes
(`resumed: true`). Ctrl-C or SIGTERM asks the model to checkpoint and stop; a second
Ctrl-C interrupts at once. Only argparse is imported at module level.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

EXIT_STOPPED = 130


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train one model on a dataset in this process (resumes from its checkpoints)",
        description="Fit a model on a dataset folder built by `factory data`, early-stopping "
        "on val and evaluating on test. Checkpoints go to <home>/checkpoints/<job_id>/: run "
        "the same command again after a kill to resume. The bundle goes to "
        "<home>/models/local/<job_id>/.",
    )
    p.add_argument("--model", required=True, help="a registered model, e.g. xgboost, lstm")
    p.add_argument("--dataset", required=True, type=Path, help="the dataset folder")
    p.add_argument("--horizon", type=int, help="label horizon (default: the dataset's first)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model parameter (repeatable); profile=tiny|default picks the base sizes",
    )
    p.add_argument("--home", help="storage root (default $FACTORY_HOME, else ./factory_home)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the result)")
    p.set_defaults(handler=run_train)


def parse_params(pairs: list[str]) -> dict[str, str]:
    from factory.errors import ConfigError

    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {pair!r} is not KEY=VALUE; fix: e.g. --param epochs=5")
        params[key.strip()] = value.strip()
    return params


class _StopOnSignal:
    """SIGINT / SIGTERM set a flag the training loop polls; a second SIGINT interrupts."""

    def __init__(self) -> None:
        self.asked = False
        self._old = {}

    def __enter__(self) -> _StopOnSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        if self.asked and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.asked = True
        print("stop requested: checkpointing, then exiting", file=sys.stderr, flush=True)

    def __call__(self) -> bool:
        return self.asked


def _progress_printer(model: str):
    def on_report(step: int, total: int, metrics: dict) -> None:
        shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        print(f"{model}: {step}/{total}  {shown}", file=sys.stderr, flush=True)

    return on_report


def run_train(args: argparse.Namespace) -> int:
    import logging

    from factory.data.manifest import DatasetManifest
    from factory.layout import Layout, ensure_writable
    from factory.training.checkpoint import CheckpointStore
    from factory.training.context import StopTraining
    from factory.training.identity import train_job_id
    from factory.training.local_context import LocalContext
    from factory.training.train import run_training
    from factory.version import code_version

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    params = parse_params(args.param)
    manifest = DatasetManifest.load(args.dataset)
    horizon = args.horizon if args.horizon is not None else manifest.horizons[0]
    # the id a worker gives the same train job (factory.training.identity)
    job_id = train_job_id(
        code_version(), manifest.symbol, manifest.dataset_id, args.model, horizon, params
    )
    layout = Layout.at(args.home)
    ensure_writable(layout.checkpoints_root())
    store = CheckpointStore(layout.home, job_id)
    with _StopOnSignal() as stop:
        on_report = None if args.json else _progress_printer(args.model)
        ctx = LocalContext(store, stop=stop, on_report=on_report)
        try:
            result = run_training(
                args.dataset,
                args.model,
                horizon,
                params,
                ctx,
                bundle_dir=layout.local_bundle_dir(job_id),
            )
        except StopTraining as exc:
            print(f"{exc}; run the same command again to resume", file=sys.stderr)
            return EXIT_STOPPED
    result["job_id"] = job_id
    if args.json:
        print(json.dumps(result))
    else:
        _print_summary(result)
    sys.stdout.flush()
    return 0


def _print_summary(result: dict) -> None:
    test, val = result["metrics"]["test"], result["metrics"]["val"]
    resumed = f", resumed from step {result['resumed_from']}" if result["resumed"] else ""
    print(
        f"trained {result['model']} (h={result['horizon']}) in {result['seconds']:.1f} s"
        f"{resumed}: test macro-F1 {test['macro_f1']:.3f} log-loss {test['log_loss']:.4f} "
        f"accuracy {test['accuracy']:.3f} (val macro-F1 {val['macro_f1']:.3f})"
    )
    print(f"  job {result['job_id']}  bundle {result['bundle']}")
