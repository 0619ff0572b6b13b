"""Every option of every method reaches it (from ``varinf.fit`` and from the CLI), and an unknown or misplaced
one fails at once, before the model is evaluated, naming the option and who takes it (issue 21)."""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch
from torch.distributions import Normal

import varinf
from varinf import Latent, Model
from varinf.cli.fit import fit_options
from varinf.cli.main import build_parser, iter_commands
from varinf.errors import OptionError
from varinf.optim import ADVIOptions, AutoOptions, BaMOptions, FitConfig, PathfinderOptions
from varinf.optim.dispatch import prepare

# a value other than the default for every option field, by method
NON_DEFAULT = {
    ADVIOptions: {"max_steps": 77, "lr": 0.05, "optimizer": lambda p, lr: torch.optim.SGD(p, lr), "tol_rel_obj": 0.01,
                  "window": 20, "average": 0.5, "decay": 0.5, "max_decays": 1, "tol_param": 0.1, "max_recoveries": 3,
                  "callback": lambda t, b: None, "batch_size": 5, "stop": "parameters", "noise": 0.2},
    BaMOptions: {"max_steps": 77, "num_draws": 12, "lambda0": 0.5, "tol_param": 0.1},
    PathfinderOptions: {"num_paths": 2, "history": 3, "elbo_draws": 4, "max_steps": 50},
    AutoOptions: {"max_steps": 77, "tol_param": 0.1},
}  # fmt: skip


class Counting(Model):
    """A model that counts its evaluations (an option error must come before the first)."""

    calls = 0

    def log_joint(self, mu, tau):
        Counting.calls += 1
        return Normal(0.0, 1.0).log_prob(mu) + Normal(0.0, 1.0).log_prob(tau)


def _model():
    rows = {"y": torch.randn(10, generator=torch.Generator().manual_seed(0))}
    return Model([Latent("mu")], log_prior=lambda mu: Normal(0.0, 1.0).log_prob(mu),
                 log_likelihood=lambda mu, data: Normal(mu, 1.0).log_prob(data["y"]), data=rows)  # fmt: skip


def test_every_option_of_every_method_reaches_its_options():
    model = _model()
    for cls, values in NON_DEFAULT.items():
        assert set(values) == {f.name for f in dataclasses.fields(cls)} - {"advi"}, cls  # the table is complete
        family = "fullrank" if cls in (BaMOptions, PathfinderOptions) else "meanfield"
        for name, value in values.items():
            _, routed = prepare(model, family, None, cls.method, None, {name: value})
            assert getattr(routed.options, name) is value or getattr(routed.options, name) == value, (cls, name)
    for name, value in NON_DEFAULT[ADVIOptions].items():  # auto takes ADVI's options (then runs ADVI)
        _, routed = prepare(model, "meanfield", None, "auto", None, {name: value})
        got = getattr(routed.options.advi_options(), name)
        assert got is value or got == value, name
    for name in ("init", "seed", "dtype", "threads", "progress", "check", "device"):
        value = {"init": "zeros", "seed": 3, "dtype": torch.float64, "threads": 2, "progress": False,
                 "check": False, "device": "cpu"}[name]  # fmt: skip
        _, routed = prepare(model, "meanfield", None, "advi", None, {name: value})
        assert getattr(routed.config, name) == value


def test_family_options_reach_the_family_under_each_method_that_builds_it():
    m = varinf.load_example("linear_regression")
    res = varinf.fit(m, "lowrank", method="advi", rank=2, max_steps=300, progress=False, diagnose=False,
                     tol_rel_obj=None)  # fmt: skip
    assert res.family.base.rank == 2 and res.family_options == {"rank": 2}
    res = varinf.fit(m, "lowrank", method="bam", rank=2, progress=False, diagnose=False)
    assert res.family.rank == 2
    res = varinf.fit(m, "lowrank", rank=2, progress=False, diagnose=False)
    assert res.family.rank == 2 and res.route[-1] == "pbam"  # auto's low rank up to PBAM_MAX dims: patch-step BaM
    res = varinf.fit(m, "lowrank", method="advi", max_steps=200, tol_rel_obj=None, progress=False, diagnose=False)
    assert res.family.base.rank == min(varinf.families.DEFAULT_RANK, m.dim)  # one default rank everywhere


@pytest.mark.parametrize(
    "method,family,options,expected",
    [
        ("auto", "auto", {"max_step": 10}, r"unknown option max_step=10 for method='auto'; did you mean 'max_steps'"),
        ("pathfinder", "fullrank", {"rank": 3}, r"rank=3: an option of family='lowrank', which method='advi', "
         r"method='auto' or method='bam' build; method='pathfinder'"),
        ("bam", "fullrank", {"batch_size": 4}, r"batch_size=4: method='bam' uses every data row"),
        ("advi", "meanfield", {"num_draws": 8}, r"num_draws=8: not an option of method='advi'; it is an option of "
         r"method='bam'"),
        ("pathfinder", "fullrank", {"window": 10}, r"window=10: not an option of method='pathfinder'"),
        ("bam", "fullrank", {"lr": 0.1}, r"lr=0.1: not an option of method='bam'; it is an option of method='advi' "
         r"or method='auto'"),
        ("advi", "meanfield", {"rank": 2}, r"rank=2: an option of family='lowrank'"),
        ("auto", "auto", {"lr": -1.0}, r"lr must be > 0"),
        ("bam", "meanfield", {}, r"bam fits a Gaussian with a full or low-rank covariance"),
        ("advi", "lowrank", {"rank": 9}, r"rank must be an integer between 1 and dim=2"),
        ("nuts", "auto", {}, r"unknown method 'nuts'"),
    ],
)  # fmt: skip
def test_a_misplaced_option_fails_at_once_naming_it_and_who_takes_it(method, family, options, expected):
    model = Counting([Latent("mu"), Latent("tau")])
    Counting.calls = 0
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=expected) as info:
        varinf.fit(model, family, method=method, progress=False, **options)
    assert time.perf_counter() - t0 < 0.1
    assert Counting.calls == 0  # refused before any model evaluation
    assert "\n" not in str(info.value)
    if (options and method != "nuts" and "lr" not in options and family != "meanfield") or "num_draws" in options:
        assert isinstance(info.value, OptionError) or "rank must" in str(info.value)


def test_advi_options_under_auto_run_advi_and_say_why():
    m = varinf.load_example("normal_normal")
    res = varinf.fit(m, window=20, max_steps=200, progress=False, diagnose=False)
    assert res.route == ("advi",) and "window" in res.route_reason and res.options.window == 20
    res = varinf.fit(m, lr="auto", progress=False, diagnose=False)  # the default value changes nothing
    assert res.route[0] == "pathfinder"


def test_a_method_options_value_is_a_method():
    m = varinf.load_example("linear_regression")
    res = varinf.fit(m, "fullrank", method=BaMOptions(num_draws=16), progress=False, diagnose=False)
    assert res.method == "bam" and res.options.num_draws == 16 and res.grad_evals % 16 < 16
    res = varinf.fit(m, method=BaMOptions(num_draws=16), num_draws=20, progress=False, diagnose=False)
    assert res.options.num_draws == 20  # a keyword overrides the value
    with pytest.raises(ValueError, match="num_draws must be an integer >= 2"):
        BaMOptions(num_draws=1)
    assert FitConfig(seed=None).seed is None


def _parse(argv):
    parser = dict(iter_commands(build_parser()))["varinf fit"]
    return parser.parse_args(argv)


def test_every_method_option_has_a_cli_flag_that_reaches_the_method():
    flags = {"max_steps": "--max-steps 50", "lr": "--lr 0.1", "tol_rel_obj": "--tol 0.01", "window": "--window 20",
             "average": "--average 0.5", "decay": "--decay 0.5", "max_decays": "--max-decays 1",
             "tol_param": "--tol-param 0.1", "max_recoveries": "--max-recoveries 2", "batch_size": "--batch-size 4",
             "stop": "--stop parameters", "noise": "--noise 0.2", "num_draws": "--num-draws 12",
             "lambda0": "--lambda0 0.5", "num_paths": "--num-paths 2", "history": "--history 3",
             "elbo_draws": "--elbo-draws 4", "init": "--init zeros",
             "threads": "--threads 2", "device": "--device cpu", "check": "--no-check", "rank": "--rank 2"}  # fmt: skip
    callables = {"optimizer", "callback"}  # Python callables: no flag (library only)
    names = {f.name for c in NON_DEFAULT for f in dataclasses.fields(c)} - {"advi"} - callables
    assert names <= set(flags), names - set(flags)
    model = varinf.load_example("linear_regression")
    for name, argv in flags.items():
        options = fit_options(_parse(["normal_normal", *argv.split()]))
        assert name in options, name
        method = {"num_draws": "bam", "lambda0": "bam", "num_paths": "pathfinder", "history": "pathfinder",
                  "elbo_draws": "pathfinder"}.get(name, "advi")  # fmt: skip
        family = {"bam": "fullrank", "pathfinder": "fullrank"}.get(method, "lowrank" if name == "rank" else "meanfield")
        kw = {k: v for k, v in options.items() if k not in ("family", "method", "evidence", "evidence_budget")}
        prepare(model, family, None, method, None, kw)  # routed without error
    args = _parse(["normal_normal", "--family-option", "passes=2", "--family-option", "kind=maf"])
    assert fit_options(args)["passes"] == 2 and fit_options(args)["kind"] == "maf"
    defaults = fit_options(_parse(["normal_normal"]))
    assert not {"max_steps", "lr", "tol_rel_obj", "window", "num_draws"} & set(defaults)  # only what is given
