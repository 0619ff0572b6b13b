"""``varinf fit <example-or-file.py>``: fit a model, print the summary and diagnostics, optionally save them.

::

    varinf fit eight_schools --family fullrank
    varinf fit my_model.py --max-steps 5000 -o out/      # out/draws.nc (or .safetensors), out/summary.{txt,json}
    varinf fit my_model.py --json > result.json
    varinf fit model.stan --data data.json -o out/       # a Stan program, compiled once (cached)

``-o DIR`` writes ``draws.nc`` (ArviZ netCDF: the ``--draws`` draws the diagnostics used and their log importance
weights; the draws the summary's estimates come from: PSIS-resampled when it reports PSIS-corrected ones, else
q's own) when ArviZ is installed, else ``draws.safetensors`` (``posterior/<latent>`` and ``sample_stats/<name>``
tensors), plus ``summary.txt`` (what is printed) and ``summary.json`` (what ``--json`` prints). Draws are stored
in float32 unless ``--dtype float64``; the pointwise groups (``log_likelihood``, ``posterior_predictive``,
``observed_data``: draws x data rows each) only with ``--log-likelihood``. Every option of every method has a flag
(``--num-draws``, ``--num-paths``, ``--rank``, ...; :mod:`.method_flags`).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import traceback
from pathlib import Path

from ..diagnostics.evidence_result import METHOD_NAMES
from ..families import FAMILIES, FAMILY_ALIASES, canonical_family
from ..objectives import GRADIENTS
from ..optim import METHODS, ADVIOptions
from .method_flags import add_method_options, method_options
from .options import (
    EXPLAIN_HELP,
    add_dtype,
    add_output,
    add_reporting,
    add_seed,
    choice,
    dtype_of,
    emit,
    integer,
    number,
    progress_of,
    to_json,
)
from .paths import check_output_folder, input_file, writing

EVIDENCE = ("auto", *METHOD_NAMES)  # --evidence: the policy of varinf.fit(evidence=...)
_ADVI = ADVIOptions()  # the defaults the help shows are ADVI's own
MIN_DRAWS = 100  # varinf.diagnostics.diagnose_q refuses fewer (its Pareto-tail fit); --draws is checked up front

__all__ = ["add_fit_options", "fit_options", "fit_record", "load_model", "register", "run_fit"]

SUMMARY_TXT, SUMMARY_JSON, FIT_FILE = "summary.txt", "summary.json", "fit.safetensors"


def _line_in(e: BaseException, path: Path) -> int | None:
    """The last line of ``path`` in ``e``'s traceback (where the user's file failed)."""
    if isinstance(e, SyntaxError) and e.filename and Path(e.filename).resolve() == path.resolve():
        return e.lineno
    line = None
    for frame in traceback.extract_tb(e.__traceback__):
        if Path(frame.filename).resolve() == path.resolve():
            line = frame.lineno
    return line


def _failure(what: str, path: Path, e: BaseException) -> ValueError:
    line = _line_in(e, path)
    where = f" at line {line}" if line is not None else ""
    msg = e.msg if isinstance(e, SyntaxError) else str(e)
    if isinstance(e, SyntaxError) and line is None and e.filename:
        where = f" in {e.filename} at line {e.lineno}"
    if isinstance(e, SystemExit):
        msg = f"it called sys.exit({e.code!r})"
    return ValueError(f"{what} {path}: {type(e).__name__}{where}: {msg}")


def _exec_file(path: Path):
    """Run a user's model file as a module (its folder importable, for helper modules beside it)."""
    name = f"varinf_user_model_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    sys.modules[name] = module  # dataclasses and pickling look their module up here
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as e:  # SyntaxError, ImportError, any error of the user's code
        sys.modules.pop(name, None)
        raise _failure("could not load model file", path, e) from e
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def load_model(target: str, data: str | None = None, progress: bool | None = None):
    """A built-in example name, a Python file defining ``model`` (a Model or a function returning one), or a
    Stan program (``.stan``) with its JSON ``data`` file.

    A model from a file that was given no ``name`` is named after the file (``poisson.py`` -> ``poisson``)."""
    from ..models import EXAMPLES, Model, load_example

    path = Path(target)
    if path.suffix == ".stan":
        from ..bridges import StanModel

        return StanModel(input_file(path), input_file(data) if data is not None else None, progress=progress)
    if data is not None:
        raise ValueError(f"--data is for Stan programs (a .stan file); {target} reads its own data")
    if target in EXAMPLES:
        return load_example(target)
    if path.suffix != ".py":
        if path.is_file():
            raise ValueError(f"{target}: a model file must be a Python file ending in .py, or a Stan program (.stan)")
        raise ValueError(f"{target!r} is neither a built-in example ({', '.join(sorted(EXAMPLES))}) nor a .py or "
                         ".stan file")  # fmt: skip
    module = _exec_file(input_file(path))
    obj = getattr(module, "model", None)
    if obj is None:
        found = [v for v in vars(module).values() if isinstance(v, Model)]
        if len(found) != 1:
            raise ValueError(f"{target}: define `model` (a varinf Model, or a function returning one)")
        obj = found[0]
    if callable(obj) and not isinstance(obj, Model):
        try:
            obj = obj()
        except Exception as e:
            raise _failure("could not build the model in", path, e) from e
    if not isinstance(obj, Model):
        raise ValueError(f"{target}: `model` must be a varinf.Model (got {type(obj).__name__})")
    if obj.name == type(obj).__name__:  # no name given: the header, the JSON and errors say the file's stem
        obj.name = path.stem
    return obj


def _objective(args: argparse.Namespace):
    """The bound the options ask for; ``None`` when none of them is given (``method="auto"`` picks its route)."""
    from ..objectives import ELBO, IWAE, Renyi

    if args.objective is None and args.gradient is None and args.particles is None:
        return None
    args.objective, args.gradient = args.objective or "elbo", args.gradient or "reparam"
    args.particles = args.particles or 1
    if args.objective == "elbo":
        return ELBO(num_particles=args.particles, gradient=args.gradient)
    if args.objective == "iwae":
        return IWAE(num_particles=args.particles, gradient=args.gradient)
    return Renyi(alpha=args.alpha, num_particles=args.particles, gradient=args.gradient)


def _advi_flags(args: argparse.Namespace) -> list[str]:
    """The flags given that only ADVI takes (they make ``--method auto`` run ADVI), as the user typed them."""
    flags = [f"--{name} {getattr(args, name)}" for name in ("objective", "gradient", "particles")
             if getattr(args, name) is not None]  # fmt: skip
    flags += [f"--lr {args.lr}"] if args.lr is not None else []
    flags += ["--fixed"] if args.fixed else []
    flags += [f"--tol {args.tol:g}"] if args.tol is not None else []
    flags += [f"--batch-size {args.batch_size}"] if args.batch_size is not None else []
    return flags


def _route_reason(args: argparse.Namespace, result, flags: list[str]) -> str | None:
    """Why ``--method auto`` ran ADVI, in the flags that made it (the library's reason speaks of the objective
    the CLI built from them); ``None``: the library's own explanation stands."""
    if result.method != "auto" or result.route != ("advi",) or not flags:
        return None
    text = f"ADVI, because {', '.join(flags)} {'is an option' if len(flags) == 1 else 'are options'} only ADVI takes"
    if args.family == "auto":
        text += f" (--family auto means {result.family_label} under ADVI)"
    return text


def fit_record(result, summary) -> dict:
    """Everything ``varinf fit`` reports, as JSON-able values (``summary.json``, ``--json``)."""
    record = {
        "model": getattr(result.model, "name", "model"),
        "family": result.family_label,
        "method": result.method,
        "route": list(result.route),
        "route_reason": result.route_reason,
        "num_steps": result.num_steps,
        "grad_evals": result.grad_evals,
        "density_evals": result.density_evals,
        "wall_time_s": result.wall_time,
        "diagnostics_time_s": result.diagnostics_time,
        "lr": result.lr,
        "converged": bool(result.converged),
        "convergence_reason": result.convergence_reason,
        "averaged_steps": result.averaged_steps,
        "posterior": summary.to_dict(),
    }
    d = result.diagnostics
    if d is not None:
        record["diagnostics"] = {
            "khat": d.khat,
            "khat_threshold": d.psis.threshold,
            "verdict": d.verdict,
            "khat_verdict": d.khat_verdict,
            "psis_ess": d.ess,
            "num_draws": d.num_draws,
            **_evidence_record(d.evidence or d.log_evidence),
            "elbo": d.elbo,
            "elbo_se": d.elbo_se,
            "kl": d.kl,
            "warnings": list(d.messages),
        }
    return record


def _evidence_record(ev) -> dict:
    """The evidence the summary shows: its se only where the method trusts it (else null: no false ±)."""
    return {
        "log_evidence": ev.estimate,
        "log_evidence_se": ev.se if ev.reliable else None,
        "log_evidence_reliable": bool(ev.reliable),
        "log_evidence_method": ev.method,
        "log_evidence_grad_evals": ev.grad_evals,
    }


def _draws_name() -> str:
    from ..diagnostics.arviz_adapter import have_arviz

    return "draws.nc" if have_arviz() else "draws.safetensors"


def _write_draws(result, tmp: Path, n: int, seed: int, *, dtype: str, pointwise: bool) -> None:
    """``n`` draws with their log importance weights, to ``tmp`` (netCDF with ArviZ, else safetensors): the draws
    the summary's estimates come from (PSIS-resampled when it reports PSIS-corrected ones, else q's own).

    The draws are stored in ``dtype`` (float32 halves them; their precision stays far finer than their Monte
    Carlo error), the log weights in float64 (PSIS exponentiates them); ``pointwise`` adds the draws x rows
    groups (``--log-likelihood``)."""
    import numpy as np

    from ..diagnostics.export import export_draws, to_inference_data

    if _draws_name().endswith(".nc"):

        def cast(v):
            return v.astype(dtype) if v.dtype.kind == "f" and v.dtype != np.dtype(dtype) else v

        idata = to_inference_data(result, num_draws=n, seed=seed, pointwise=pointwise)
        # the draws (and pointwise groups) in dtype; the log weights keep float64: PSIS exponentiates them
        groups = [g for g in idata.groups() if g != "sample_stats"]
        idata.map(lambda ds: ds.map(cast, keep_attrs=True), groups=groups, inplace=True)
        idata.to_netcdf(str(tmp))
        return
    import torch

    from ..utils import write_safetensors

    d, index, corrected = export_draws(result, n, seed)
    tensors = {f"posterior/{k}": (v.to(getattr(torch, dtype)) if v.is_floating_point() else v)[index.to(v.device)]
               for k, v in d.draws.items()}  # fmt: skip
    tensors |= {"sample_stats/log_weight": d.psis.log_weights[index], "sample_stats/log_q": d.log_q[index]}
    meta = {"model": getattr(result.model, "name", "model"), "family": result.family_label, "khat": d.khat,
            "draws": "PSIS-resampled draws of q" if corrected else "draws of q"}  # fmt: skip
    write_safetensors(tmp, tensors, meta, format="varinf.draws/1")


def _size(num_bytes: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if num_bytes < 1000 or unit == "GB":
            return f"{num_bytes:.0f} {unit}" if unit == "bytes" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1000
    return ""


def _written(args: argparse.Namespace, model, draws: Path, size: int) -> str:
    """The line saying what ``-o`` wrote, with the draws file's size (and what --log-likelihood would add)."""
    itemsize = 8 if args.dtype == "float64" else 4
    dtype = args.dtype or "float32"
    line = (f"written to {args.output}/: {draws.name} ({_size(size)}, {args.draws} draws in {dtype}), "
            f"{SUMMARY_TXT}, {SUMMARY_JSON}, {FIT_FILE} (varinf.load reads it)")  # fmt: skip
    rows = model.plate.size if getattr(model, "has_plate", False) else 0
    if rows and not args.log_likelihood and draws.suffix == ".nc":
        line += (f"; --log-likelihood would add {args.draws} x {rows:,} pointwise values per group "
                 f"(about {_size(args.draws * rows * itemsize)} each)")  # fmt: skip
    return line


def run_fit(args: argparse.Namespace) -> int:
    from .. import fit
    from ..optim.persist import save_result
    from ..optim.summary import summarize

    outputs = []
    if args.output is not None:
        inputs = [args.target] if Path(args.target).suffix in (".py", ".stan") else []
        inputs += [args.data] if args.data is not None else []
        outputs = check_output_folder(args.output, [_draws_name(), SUMMARY_TXT, SUMMARY_JSON, FIT_FILE],
                                      inputs=inputs, force=args.force)  # fmt: skip
    advi_flags = _advi_flags(args)  # (before _objective fills in the defaults of the flags not given)
    objective = _objective(args)  # its own checks (e.g. dreg needs iwae) before the model file runs
    model = load_model(args.target, args.data, progress_of(args))
    # warnings (ConvergenceWarning, DiagnosticWarning, ...) reach stderr through main(), also under --quiet
    # --draws sets the diagnostics' draws too, so the k-hat, the PSIS-corrected table and -o all use them
    result = fit(model, objective=objective, diagnose_draws=args.draws, **fit_options(args))
    if getattr(model, "distributed", False) and not model.plate.world.is_main:
        return 0  # under torchrun: rank 0 reports and writes
    summary = summarize(result, n=args.draws, seed=args.seed, verbose=args.explain,
                        route_reason=_route_reason(args, result, advi_flags))  # fmt: skip
    record = fit_record(result, summary)
    written = ""
    if outputs:
        with writing(outputs, force=args.force) as (draws, txt, js, saved):
            _write_draws(result, draws, args.draws, args.seed, dtype=args.dtype or "float32",
                         pointwise=args.log_likelihood)  # fmt: skip
            record["draws_file"] = {"path": str(outputs[0]), "bytes": draws.stat().st_size, "draws": args.draws,
                                    "dtype": args.dtype or "float32", "log_likelihood": bool(args.log_likelihood)}  # fmt: skip
            txt.write_text(f"{summary}\n", encoding="utf-8")
            js.write_text(to_json(record) + "\n", encoding="utf-8")
            save_result(result, saved, add_suffix=False)
        written = _written(args, model, outputs[0], record["draws_file"]["bytes"])
    emit(args, lambda: str(summary) + (f"\n{written}" if written else ""), record)
    return 0


def add_fit_options(p: argparse.ArgumentParser) -> None:
    """The options of a posterior fit (``varinf fit``, ``varinf posteriordb fit``); see :func:`fit_options`."""
    p.add_argument("--method", choices=sorted(METHODS), default="auto",
                   help="fitting method (default auto: Pathfinder, then Batch-and-Match / an ADVI polish)")  # fmt: skip
    p.add_argument("--family", type=choice("auto", *FAMILIES, *FAMILY_ALIASES), default="auto",
                   metavar="|".join(["auto", *FAMILIES]),
                   help="variational family (auto: full rank up to 300 dims, low rank above; mean-field under "
                        "ADVI; aliases: " + ", ".join(sorted(FAMILY_ALIASES)) + ")")  # fmt: skip
    p.add_argument("--max-steps", type=integer(1), default=None,
                   help=f"cap on iterations (every method; Pathfinder: L-BFGS iterations per path; default {_ADVI.max_steps})")  # fmt: skip
    p.add_argument("--lr", type=choice("auto", also=number(0, lo_open=True)), default=None,
                   help=f"ADVI: Adam step size (> 0) or 'auto' (default {_ADVI.lr}; a number makes --method auto run "
                        "ADVI)")  # fmt: skip
    p.add_argument("--tol", type=number(0, lo_open=True), default=None,
                   help=f"ADVI: relative ELBO change for convergence (default {_ADVI.tol_rel_obj:g})")  # fmt: skip
    p.add_argument("--fixed", action="store_true", help="ADVI: run exactly --max-steps (no convergence check)")
    p.add_argument("--batch-size", type=integer(1), default=None,
                   help="fit on minibatches of this many data rows (models with data; minibatch ADVI)")  # fmt: skip
    p.add_argument("--evidence", choices=EVIDENCE, default="auto",
                   help="log p(x) by importance sampling, upgraded to bridge sampling when that is unreliable (auto), "
                        "or always by is, bridge or ais (default auto)")  # fmt: skip
    p.add_argument("--evidence-budget", type=integer(0), default=None, metavar="N",
                   help="model gradient evaluations the evidence may spend (default: the fit's own, at most 20000)")  # fmt: skip
    add_seed(p)
    add_dtype(p, None, note="the fit's arithmetic; varinf fit -o stores draws in float32 unless float64")
    add_method_options(p)


def fit_options(args: argparse.Namespace) -> dict:
    """:func:`varinf.fit` keyword arguments from :func:`add_fit_options`' options: the method's options only when
    given (each method keeps its own defaults; one it does not take is refused with its name)."""
    given = {
        "max_steps": args.max_steps,
        "lr": args.lr if args.lr in (None, "auto") else float(args.lr),
        "tol_rel_obj": args.tol,
        "batch_size": args.batch_size,
    }
    options = {k: v for k, v in given.items() if v is not None}
    if args.fixed:
        options["tol_rel_obj"] = None
    return {
        "family": "auto" if args.family == "auto" else canonical_family(args.family),
        "method": args.method,
        "seed": args.seed,
        "dtype": dtype_of(args),
        "progress": progress_of(args),
        "evidence": args.evidence,
        "evidence_budget": args.evidence_budget,
        **options,
        **method_options(args),
    }


def register(sub) -> None:
    from ..models import EXAMPLES

    p = sub.add_parser("fit", help="fit a model by variational inference and print a posterior summary")
    p.add_argument("target", help=f"a built-in example ({', '.join(sorted(EXAMPLES))}; 'varinf models' describes them), "
                                  "a .py file defining `model`, or a Stan program (.stan; compiled once and cached)")  # fmt: skip
    p.add_argument("--data", default=None, metavar="JSON",
                   help="the Stan program's data (a JSON file in CmdStan's format)")  # fmt: skip
    add_fit_options(p)
    p.add_argument("--objective", default=None, choices=["elbo", "iwae", "renyi"],
                   help="bound to optimize (ADVI; default elbo; giving one makes --method auto run ADVI)")  # fmt: skip
    p.add_argument("--gradient", default=None, choices=GRADIENTS,
                   help="gradient estimator (ADVI; default reparam; dreg: IWAE only)")  # fmt: skip
    p.add_argument("--particles", type=integer(1), default=None, help="draws per step (ADVI; K for IWAE/Renyi)")
    p.add_argument("--alpha", type=number(), default=0.5, help="Renyi alpha")
    p.add_argument("--draws", type=integer(MIN_DRAWS), default=4000,
                   help=f"draws of q for the diagnostics (k-hat, PSIS), the summary and -o (at least {MIN_DRAWS}; "
                        "default 4000)")  # fmt: skip
    p.add_argument("--log-likelihood", action="store_true",
                   help="-o: also store the pointwise groups (log_likelihood for az.loo/az.waic, posterior_predictive, "
                        "observed_data): draws x data rows values each, e.g. 4000 x 2000 rows = 32 MB in float32")  # fmt: skip
    p.add_argument("--explain", action="store_true", help=EXPLAIN_HELP)
    add_output(p, "folder for draws.nc (ArviZ; draws.safetensors without ArviZ; float32 unless --dtype float64), "
                  "summary.txt, summary.json and fit.safetensors (varinf.load)")  # fmt: skip
    add_reporting(p)
    p.set_defaults(func=run_fit)
