"""Every benchmark figure that README.md, the subpackage READMEs and the documentation's pages quote, traced to the
results JSON it comes from.

``FIGURES`` is the table: (file, phrase, results stem, function). The function reads the JSON payload and returns
the figures as the file prints them (same rounding), or None where the JSON does not hold them yet (then each
figure reads ``—``); the file must contain ``phrase.format(*figures)`` (whitespace-insensitive: lines wrap).
``tests/benchmarks/test_readme_figures.py`` checks every row against the JSON present at test time. Tables that
the documentation generates from the JSON when it is built (``docs/_ext/results_tables.py``) need no row here.

    python benchmarks/readme_figures.py            # each phrase as the JSON gives it, and whether its file has it
    python benchmarks/readme_figures.py --update   # rewrite the quoted figures in place from the JSON

``--update`` finds each phrase with whatever figures it holds now (a figure is one word, or any text inside
parentheses) and writes the JSON's figures in their place; it changes nothing else, and names the phrases it
could not find (reword those by hand). Never imported by the package.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable
from functools import cache

import _results

ROOT = _results.REPO
MISSING = "—"  # a figure the JSON does not hold yet


@cache
def payload(stem: str) -> dict:
    return json.loads((_results.RESULTS / f"{stem}.json").read_text())


def _g2(x: float) -> str:
    """Two significant digits, as the README prints ratios."""
    return f"{x:.2g}"


def _signed(x: float) -> str:
    """A signed percentage as the README prints it: −42.6, +31.2 (a true minus sign)."""
    return f"{x:+.1f}".replace("-", "−")


# ----------------------------------------------------------------------------------------------- posterior_speed
def _ps_default(p: dict) -> tuple:
    from posterior_speed import DEFAULT_FIT, reached_count

    grads = [s["info"]["grad_evals"] for run in p["runs"].values() for s in run.get("varinf", {}).get("settings", [])
             if s["name"] == DEFAULT_FIT and not s["error"]]  # fmt: skip
    met, ran = reached_count(p, f"varinf {DEFAULT_FIT}")
    return str(ran), f"{statistics.median(grads):.0f}", str(met)


def _ps_ratios(p: dict) -> tuple:
    from posterior_speed import median_ratio

    nuts, svi = median_ratio(p, "nuts"), median_ratio(p, "svi")
    return _g2(nuts["median"]), _g2(svi["median"]), str(nuts["n"]), str(svi["n"])


def _ps_silent(p: dict) -> tuple:
    """(varinf fits off by > 0.1 sd without a warning, varinf fits): every method and family on every posterior."""
    from posterior_speed import _verdict

    fits = [s for run in p["runs"].values() for s in run.get("varinf", {}).get("settings", []) if not s["error"]]
    silent = sum(_verdict(s["checkpoints"][-1], s["info"]["warned"]) == "SILENT FAILURE" for s in fits)
    return str(silent), str(len(fits))


def _ps_headline(p: dict) -> tuple:
    n, _, met = _ps_default(p)
    nuts, svi, n_nuts, _ = _ps_ratios(p)
    return (n, n_nuts, nuts, svi, met, *_ps_silent(p))


def _ps_cli(p: dict) -> tuple | None:
    if "eight_schools_cli" not in p:
        return None
    e = p["eight_schools_cli"]
    return f"{e['wall_median']:.2f}", f"{e['cpu_median']:.2f}", f"{e['max_err']:.3f}"


def _ps_logreg(p: dict) -> tuple | None:
    if not p.get("logreg"):
        return None
    small, big = p["logreg"]
    key = "varinf fused (after)"
    return (f"{small['ratio_to_numpyro_cpu'][key]:.2f}", f"{small['aten_ops_per_step']['after']['all']:.0f}",
            f"{small['aten_ops_per_step']['before']['all']:.0f}", f"{big['ratio_to_numpyro_cpu'][key]:.2f}")  # fmt: skip


def _ps_posteriors(p: dict) -> tuple:
    return (str(len(p["runs"])),)


# ----------------------------------------------------------------------------------------------- big_data
def _bd_headline(p: dict) -> tuple:
    v = p["results"]["1m"]["varinf_minibatch"]
    return f"{v['cpu_s']:.1f}", f"{v['mean_err']:.3f}"


# ----------------------------------------------------------------------------------------------- evidence_calibration
def _ev_fits(parts: tuple[str, ...]):
    from evidence_calibration import fits

    return [r for r in fits(payload("evidence_calibration")) if r.part in parts]


def _ev_warn(p: dict) -> tuple:
    from evidence_calibration import warning_stats

    st = warning_stats(_ev_fits(("conjugate", "shift")))
    missed = [r.mean_error for r in st["legacy_missed"]]
    assert not st["silent"]  # "all ... warned"
    return (str(st["fits"]), str(len(st["bad"])), str(len(missed)), f"{min(missed):.3f}", f"{max(missed):.3f}")


def _ev_conj(p: dict) -> tuple:
    from evidence_calibration import method_stats

    rows = _ev_fits(("conjugate",))
    is_, br = method_stats(rows, "is"), method_stats(rows, "bridge")
    assert (
        is_["reliable_beyond3"] == 0
    )  # every error beyond 3 se was labeled unreliable and br["near"] == br["run"] == len(rows) == br["within2"]
    return (str(len(rows)), f"{100 * is_['within2'] / is_['reliable']:.1f}", f"{br['max_abs_err']:.2g}",
            str(br["run"]))  # fmt: skip


def _ev_is_low(p: dict) -> tuple:
    from evidence_calibration import _err

    rows = [
        r
        for r in _ev_fits(("conjugate",))
        if r.family == "meanfield" and r.model in ("linreg_rho0.9", "linreg_rho0.99")
    ]
    low = [-_err(r, "is") for r in rows]
    assert all(x > 0 for x in low) and not any(r.methods["is"].reliable for r in rows)
    return f"{min(low):.1f}", f"{max(low):.1f}"


def _ev_table(key: str) -> Callable[[dict], tuple]:
    """A row of the calibration table in diagnostics/README.md."""

    def f(p: dict) -> tuple:
        from evidence_calibration import method_stats

        m = method_stats(_ev_fits(("conjugate",)), key)
        beyond = m["beyond3"] if key == "is" else m["reliable_beyond3"]
        return (str(m["reliable"]), str(m["run"]), str(m["within2"]), str(m["reliable"]),
                f"{100 * m['within2'] / m['reliable']:.1f}", str(beyond), str(m["near"]), str(m["run"]),
                f"{m['max_abs_err_reliable']:.2g}", f"{m['max_grad_evals']:,}")  # fmt: skip

    return f


def _ev_correlated(p: dict) -> tuple:
    from evidence_calibration import _err

    conj = _ev_fits(("conjugate",))
    mf = [r for r in conj if r.family == "meanfield" and r.model in ("linreg_rho0.9", "linreg_rho0.99")]
    low = [-_err(r, "is") for r in mf]
    assert all(x > 0 for x in low) and not any(r.methods["is"].reliable for r in mf)
    wide = [
        r for r in conj if r.family == "meanfield" and r.model in ("linreg_rho0.9", "linreg_rho0.99", "gp_regression")
    ]
    miss = sum(abs(_err(r, "ais_from_q")) > 0.1 for r in wide)
    return (str(len(mf)), f"{min(low):.2f}", f"{max(low):.1f}", f"{max(abs(_err(r, 'bridge')) for r in mf):.3f}",
            str(miss), str(len(wide)))  # fmt: skip


def _ev_khat_band(p: dict) -> tuple:
    from evidence_calibration import _z

    band = [r for r in _ev_fits(("conjugate",)) if 0.3 <= r.methods["is"].khat < 0.5]
    return str(sum(abs(_z(r, "is")) <= 2 for r in band)), str(len(band))


def _ev_pdb(p: dict) -> tuple:
    from evidence_calibration import pairwise_gaps

    gaps = [g for r in _ev_fits(("posteriordb",)) if (g := pairwise_gaps(r)[1])]
    return f"{max(max(g) for g in gaps):.2f}", str(len(gaps))


def _ev_shift(part: str) -> Callable[[dict], tuple]:
    def f(p: dict) -> tuple:
        from evidence_calibration import warning_stats

        st = warning_stats(_ev_fits((part,)))
        assert not st["silent"]
        return (str(st["fits"]), str(len(st["bad"])), str(len(st["bad"])), str(st["shift_warned"]),
                str(len(st["legacy_missed"])))  # fmt: skip

    return f


def _ev_fine(p: dict) -> tuple:
    from evidence_calibration import warning_stats

    a, b = warning_stats(_ev_fits(("conjugate",))), warning_stats(_ev_fits(("shift",)))
    return str(a["fine_shift_warned"]), str(len(a["fine"])), str(b["fine_shift_warned"]), str(len(b["fine"]))


def _ev_headline(p: dict) -> tuple:
    from evidence_calibration import method_stats

    rows = _ev_fits(("conjugate",))
    br = method_stats(rows, "bridge")
    return str(len(rows)), f"{br['max_abs_err']:.2g}", str(br["run"]), str(len(rows))


def _ev_all_warned(p: dict) -> tuple:
    from evidence_calibration import warning_stats

    st = warning_stats(_ev_fits(("conjugate", "shift")))
    assert not st["silent"]  # "every fit whose means were off by more than 0.1 sd warned"
    return (str(st["fits"]),)


def _ev_conjugate(p: dict) -> tuple:
    return (str(len(_ev_fits(("conjugate",)))),)


def _ev_parts(p: dict) -> tuple:
    return str(len(_ev_fits(("conjugate",)))), str(len(_ev_fits(("posteriordb",))))


# ----------------------------------------------------------------------------------------------- CAVI, VAE
def _gmm_headline(p: dict) -> tuple:
    from cavi_gmm import speedups

    n, d = p["x_shape"]
    return f"{n:,}", str(d), f"{statistics.median(speedups(p)['varinf_f64_same_start']):.1f}"


def _lda_headline(p: dict) -> tuple:
    rows = [r for r in p["rows"] if r["method"] == "batch"]
    return (str(len({r["corpus"] for r in rows})), f"{statistics.median(r['speedup'] for r in rows):.1f}",
            f"{statistics.median(r['perplexity_ratio'] for r in rows):.2f}")  # fmt: skip


def _vae_headline(p: dict) -> tuple:
    q = p["models"]["vae"]["points"][-1]
    return f"{q['cpu_s'] / 3600:.1f}", f"{q['nll']:.2f}", f"{q['nll_stderr']:.2f}", f"{q['num_examples']:,}"


# ----------------------------------------------------------------------------------------------- posteriordb_all
def _pdb_all_headline(p: dict) -> tuple:
    from posteriordb_all import summarize

    s = summarize(p)
    return (str(s["reference_fitted"]), str(s["good_khat_accurate"]), str(s["good_khat"]), str(len(s["silent"])),
            f"{s['median_grad_evals']:.0f}", f"{s['median_leapfrog']:,.0f}", f"{s['median_wall_ratio']:.3f}")  # fmt: skip


# ----------------------------------------------------------------------------------------------- compression
def _bitsback(p: dict) -> tuple:
    c = p["codecs"]
    return f"{c['BB-ANS (varinf)']['bits_per_dim']:.4f}", f"{c['bz2']['bits_per_dim']:.4f}"


def _codec_headline(p: dict) -> tuple:
    h, pts = p["head_to_head"], p["report"]["points"]["learned"]
    decode = payload("codec_speed")["median_s_per_image"]["decode_cpu"]
    return (str(p["images"]), _signed(h["JPEG"]["psnr"]), _signed(h["JPEG"]["ms_ssim"]), _signed(h["WEBP"]["psnr"]),
            _signed(h["WEBP"]["ms_ssim"]), _signed(h["AVIF"]["psnr"]), _signed(h["AVIF"]["ms_ssim"]),
            f"{min(q['bpp'] for q in pts):.2f}", f"{max(q['bpp'] for q in pts):.2f}",
            f"{min(q['psnr'] for q in pts):.1f}", f"{max(q['psnr'] for q in pts):.1f}", f"{decode:.2f}")  # fmt: skip


# ----------------------------------------------------------------------------------------------- Stan bridge
def _stan_overhead(p: dict) -> tuple:
    ratios = lambda path: [r["ratio"] for r in p["rows"] if r["path"] == path]
    call, grad = ratios("engine call (torch in/out)"), ratios("autograd: log_density + backward")
    return (str(p["draws"]), f"{min(call):.2f}", f"{max(call):.2f}", f"{min(grad):.1f}", f"{max(grad):.1f}")


def _stan_compile(p: dict) -> tuple:
    """CPU s per program once the toolchain is built, with and without the precompiled header; the median over the
    posteriordb programs that compiled (not loaded from the cache) in ``stan_bridge_posteriordb.json``."""
    cpu = lambda pch: [r["cpu_s"] for r in p["rows"] if r["pch"] is pch and not r["program"].startswith("toolchain")]
    rows = payload("stan_bridge_posteriordb")["rows"]
    compiled = [r["compile_cpu_s"] for r in rows if r["compile_cpu_s"] >= 1.0]
    return (f"{min(cpu(True)):.0f}", f"{max(cpu(True)):.0f}", f"{min(cpu(False)):.0f}", f"{max(cpu(False)):.0f}",
            f"{statistics.median(compiled):.0f}", str(len(compiled)), str(len(rows) - len(compiled)),
            str(len(rows)))  # fmt: skip


# ----------------------------------------------------------------------------------------------- compression details
def _sig(x: float, digits: int) -> str:
    """``digits`` significant digits with thousands separators: 8,234.7 -> 8,200 (2)."""
    return f"{float(f'{x:.{digits}g}'):,.0f}"


def _bb_detail(p: dict) -> tuple:
    return (f"{p['images']:,}", f"{p['codecs']['BB-ANS (varinf)']['bits_per_dim']:.4f}",
            f"{p['neg_elbo_bits_per_dim']:.4f}", f"{p['net_over_neg_elbo']:.4f}")  # fmt: skip


def _bb_peers(p: dict) -> tuple:
    return tuple(f"{p['codecs'][k]['bits_per_dim']:.4f}" for k in ("bz2", "lzma", "gzip", "WebP-lossless", "PNG"))


def _bb_speed(p: dict) -> tuple:
    c = p["codecs"]["BB-ANS (varinf)"]
    load = p["meta"]["legacy"]["recorded"]["1-min load average when the markdown was written"]
    return (_sig(c["encode_img_s_cpu"], 2), _sig(c["decode_img_s_cpu"], 2), _sig(c["encode_img_s"], 3),
            _sig(c["decode_img_s"], 3), f"{load:.0f}")  # fmt: skip


def _bb_lossless(p: dict) -> tuple:
    c = p["codecs"]["BB-ANS (varinf)"]
    return (f"{p['images']:,}", f"{c['bits_per_dim']:.4f}", f"{p['neg_elbo_bits_per_dim']:.4f}",
            _sig(c["encode_img_s_cpu"], 2), _sig(c["decode_img_s_cpu"], 2))  # fmt: skip


def _codec_detail(p: dict) -> tuple:
    prev, h = p["vs_previous"], p["head_to_head"]
    return (f"{-prev['psnr']:.1f}", f"{-prev['ms_ssim']:.1f}", _signed(h["JPEG"]["psnr"]), _signed(h["JPEG"]["ms_ssim"]),
            _signed(h["WEBP"]["psnr"]), _signed(h["WEBP"]["ms_ssim"]), _signed(h["AVIF"]["psnr"]))  # fmt: skip


def _codec_span(p: dict) -> tuple:
    pts = p["report"]["points"]["learned"]
    return (f"{min(q['psnr'] for q in pts):.1f}", f"{max(q['psnr'] for q in pts):.1f}",
            f"{min(q['bpp'] for q in pts):.3f}", f"{max(q['bpp'] for q in pts):.3f}")  # fmt: skip


def _codec_bits(p: dict) -> tuple:
    a, f = p["payload_over_estimated_bits"], p["file_over_estimated_bits"]
    return f"{a['min']:.4f}", f"{a['max']:.4f}", f"{f['max']:.3f}"


def _codec_speed(p: dict) -> tuple:
    m = p["median_s_per_image"]
    return f"{m['encode_cpu']:.2f}", f"{m['decode_cpu']:.2f}"


def _codec_speed_peers(p: dict) -> tuple:
    m = p["median_s_per_image"]
    return tuple(
        f"{m[f'{k}_{op}_cpu']:{spec}}" for k in ("WEBP", "AVIF") for op, spec in (("encode", ".2f"), ("decode", ".3f"))
    )


def _size_bound(p: dict) -> tuple:
    return (f"{p['floor_bits_per_64x64_block']:.1f}", f"{p['floor_bpp']:.2g}", _sig(p["max_pixels_per_payload_byte"], 3))


def _size_cost(p: dict) -> tuple:
    cheapest = max(s["pixels_per_byte"] for s in p["cheapest_streams"])
    return (f"{p['bound_cpu_ms_per_payload_byte']:.0f}", _sig(p["bound_kb_per_payload_byte"], 2), _sig(cheapest, 2))


def _fuzz(p: dict) -> tuple:
    return (f"{p['inputs']:,}", f"{p['crafted_headers']:,}", str(p["failures"]), str(p["hangs"]),
            f"{p['max_seconds']:.3f}", f"{p['max_cpu_seconds']:.3f}", f"{p['max_mb']:.0f}")  # fmt: skip


README, OPTIM, DIAG = "README.md", "src/varinf/optim/README.md", "src/varinf/diagnostics/README.md"
COMPRESSION, LOSSLESS = "src/varinf/compression/README.md", "src/varinf/compression/lossless/README.md"
LOSSY = "src/varinf/compression/lossy/README.md"
CHOOSING, DIAG_DOC = "docs/guide/choosing.rst", "docs/guide/diagnostics.rst"
BENCH_DOC, STAN_DOC = "docs/guide/benchmarks.rst", "docs/guide/stan_pymc.rst"

# (file, phrase with one {} per figure, results stem, figures from the JSON payload). A phrase neither starts nor
# ends with a figure, so that --update can find where each one begins and ends.
# fmt: off
FIGURES: list[tuple[str, str, str, Callable[[dict], tuple | None]]] = [
    # README.md: the headline table
    (README, "| default fit on {} posteriordb posteriors, vs NumPyro on the {} it has ports for | time to equal "
             "accuracy (every mean within 0.1 reference sd, every sd ratio in [0.8, 1.2]): median {}× the CPU time of "
             "NumPyro NUTS, {}× that of the best-tuned NumPyro SVI; the goal met on {}; {} of {} varinf fits (every method and family) off by more "
             "than 0.1 sd without a warning |", "posterior_speed", _ps_headline),
    (README, "| default fit on the {} posteriordb posteriors with reference draws, Stan programs through the Stan "
             "bridge | accurate (means within 0.1 reference sd, sd ratios in [0.9, 1.1], summary and draws) on {} of "
             "the {} with k̂ < 0.7; {} off without a warning; median {} gradient evaluations vs {} leapfrog steps of "
             "Stan's NUTS; median wall time {}× NUTS's sampling |", "posteriordb_all", _pdb_all_headline),
    (README, "| 1,000,000-row logistic regression, minibatches | fit + diagnostics in {} CPU s; means within {} "
             "Laplace sds |", "big_data", _bd_headline),
    (README, "| log evidence, {} conjugate fits with exact answers | bridge sampling within {} nats on {} of {} |",
     "evidence_calibration", _ev_headline),
    (README, "| Bayesian GMM vs scikit-learn, {} × {} | {}× faster, same ELBO |", "cavi_gmm", _gmm_headline),
    (README, "| LDA (batch CAVI) vs scikit-learn, {} corpora | {}× faster, held-out perplexity ratio {} |", "cavi_lda",
     _lda_headline),
    (README, "| VAE on binarized MNIST, {} CPU hour | test NLL {} ± {} nats (k = 5000, {} images) |", "vae_mnist",
     _vae_headline),
    (README, "| bits-back lossless coding, binarized MNIST | {} bits/dim (bz2: {}) |", "bitsback_mnist", _bitsback),
    (README, "| lossy image codec (checkerboard context), {} Kodak images | BD-rate vs JPEG {} % (PSNR), {} % "
             "(MS-SSIM); head to head vs WebP {} % / {} %, vs AVIF {} % / {} %; {}–{} bpp, {}–{} dB; decode {} CPU s "
             "per image |", "codec_rd", _codec_headline),
    # optim/README.md: posterior_speed
    (OPTIM, "On {} posteriordb posteriors the default fit takes a median of {} gradient evaluations and meets the "
            "equal-accuracy goal on {} (", "posterior_speed", _ps_default),
    (OPTIM, "a median {}× the CPU time of NumPyro NUTS and {}× that of the best-tuned NumPyro SVI (over {} and {} "
            "posteriors", "posterior_speed", _ps_ratios),
    (OPTIM, "median {} s wall ({} s CPU); the summary's means within {} reference sd", "posterior_speed", _ps_cli),
    (OPTIM, "fused step {}× NumPyro's warm jitted step in CPU time, both float32 ({} ATen calls per step, the generic "
            "autograd step {}); at 100,000 × 100 {}×", "posterior_speed", _ps_logreg),
    # diagnostics/README.md: evidence_calibration
    (DIAG, "`benchmarks/results/evidence_calibration.md`): {} fits of seven conjugate models with exact log p(x) "
           "(normal-normal; linear regression with predictor correlation 0 / 0.5 / 0.9 / 0.99; GP regression; "
           "normal-gamma, whose posterior is not Gaussian) × mean-field / full-rank (default fits and 400-step fits) / "
           "flow, plus the {} posteriordb posteriors:", "evidence_calibration", _ev_parts),
    (DIAG, "| IS (q, 4000 draws) | {} / {} | {} / {} ({}%); all {} errors beyond 3 se labeled unreliable | {} / {} "
           "| {} | {} |", "evidence_calibration", _ev_table("is")),
    (DIAG, "| bridge sampling | {} / {} | {} / {} ({}%); {} reliable beyond 3 se | {} / {} | {} | ≤ {} |",
     "evidence_calibration", _ev_table("bridge")),
    (DIAG, "| AIS (automatic start) | {} / {} | {} / {} ({}%); {} reliable beyond 3 se | {} / {} | {} | ≤ {} |",
     "evidence_calibration", _ev_table("ais")),
    (DIAG, "| AIS from q | {} / {} | {} / {} ({}%); {} reliable beyond 3 se | {} / {} | {} | ≤ {} |",
     "evidence_calibration", _ev_table("ais_from_q")),
    (DIAG, "| default fit (`auto`) | {} / {} | {} / {} ({}%); {} reliable beyond 3 se | {} / {} | {} | ≤ {} |",
     "evidence_calibration", _ev_table("policy")),
    (DIAG, "Mean-field fits of the correlated regressions (ρ 0.9 / 0.99, {} fits): IS is {}–{} nats low and labeled "
           "unreliable every time; bridge sampling is within {} nats of exact on all of them. AIS from q misses 0.1 "
           "nats on {} of the {} mean-field fits of ρ 0.9 / 0.99 / GP regression", "evidence_calibration",
     _ev_correlated),
    (DIAG, "for 0.3 ≤ k̂ < 0.5 the ±2 se interval covered the exact value on only {} of {} conjugate fits",
     "evidence_calibration", _ev_khat_band),
    (DIAG, "every pair of reliable estimates agrees within {} combined se ({} posteriors with two or more)",
     "evidence_calibration", _ev_pdb),
    (DIAG, "of {} conjugate fits, {} had a mean off by more than 0.1 posterior sd and all {} warned ({} by the mean "
           "shift, the rest by k̂; the old rule missed {})", "evidence_calibration", _ev_shift("conjugate")),
    (DIAG, "of {} held-out-style linear and logistic regressions (random sizes and correlations, stopped after 150 / "
           "400 steps or converged), {} were off by more than 0.1 sd and all {} warned ({} by the mean shift; the "
           "old rule missed {})", "evidence_calibration", _ev_shift("shift")),
    (DIAG, "also fired on {} of {} and {} of {} fits whose means were within 0.05 sd", "evidence_calibration", _ev_fine),
    # compression READMEs
    (COMPRESSION, "* `bitsback_mnist.md`: binarized MNIST test set ({} images), one file, {} bits/dim. The float "
                  "model's −ELBO is {} and the net/−ELBO ratio is {} (", "bitsback_mnist", _bb_detail),
    (COMPRESSION, "For comparison: bz2 {}, lzma {}, gzip {}, WebP-lossless {}, PNG {}. Speed", "bitsback_mnist",
     _bb_peers),
    (COMPRESSION, "Speed on one thread: {} images/s to encode and {} to decode by CPU time; by the wall clock of the "
                  "shared 2-core machine {} / {} at load average {}.", "bitsback_mnist", _bb_speed),
    (COMPRESSION, "On Kodak it needs {}% fewer bits than the mean-scale model by PSNR and {}% by MS-SSIM; BD-rate vs "
                  "JPEG {}% / {}%; head to head {}% vs WebP by PSNR and {}% by MS-SSIM (issue-23 goal −5% for both: "
                  "missed), {}% vs AVIF (goal", "codec_rd", _codec_detail),
    (COMPRESSION, "levels span {}–{} dB at {}–{} bpp (goal", "codec_rd", _codec_span),
    (COMPRESSION, "Real/estimated bits {}–{} (file bits, headers included, ≤ {}).", "codec_rd", _codec_bits),
    (COMPRESSION, "* `codec_speed.md`: {} s CPU to encode and {} s to decode a Kodak image on one thread (goals",
     "codec_speed", _codec_speed),
    (COMPRESSION, "s: met; Pillow WebP {} / {} s, AVIF {} / {} s)", "codec_speed", _codec_speed_peers),
    (COMPRESSION, "model id recorded): {} inputs, {} of them crafted headers with valid CRCs: {} crashes or wrong "
                  "decodes, {} hangs; slowest input {} s wall-clock on a shared core ({} s CPU), at most {} MB added",
     "fuzz_vif", _fuzz),
    (LOSSLESS, "binarized MNIST test set, {} images): {} bits/dim for the whole file (float model −ELBO {}); {} "
               "images/s to encode and {} to decode on one thread by CPU time.", "bitsback_mnist", _bb_lossless),
    (LOSSY, "shipped model {} bits per 64×64 block ({} bpp), i.e. at most about {} pixels per payload byte.",
     "codec_size_bound", _size_bound),
    (LOSSY, "at worst about {} ms of CPU and {} KB per payload byte (the cheapest stream we could build, every latent "
            "at its mode, holds about {} pixels per byte)", "codec_size_bound", _size_cost),
    # documentation pages (their tables are generated from the JSON when the site is built)
    (CHOOSING, "``benchmarks/results/posterior_speed.json`` ({} posteriordb posteriors with reference draws",
     "posterior_speed", _ps_posteriors),
    (DIAG_DOC, "Measured on {} fits with exact or long-HMC reference means, every fit whose means were off by more than "
               "0.1 sd warned", "evidence_calibration", _ev_all_warned),
    (BENCH_DOC, "------------ {} fits of seven conjugate models with exact log p(x)", "evidence_calibration",
     _ev_conjugate),
    (STAN_DOC, "after which a program takes {}-{} s of CPU instead of {}-{} s without it (median {} s over the {} "
               "posteriordb programs compiled; {} of the {} were", "stan_bridge_compile", _stan_compile),
    (STAN_DOC, "At {} draws of a 10-dimensional model the Stan bridge's batched call costs {}-{}× the same batch "
               "looped in C++; through torch's autograd (what ADVI with flows and low-rank families uses) {}-{}×.",
     "stan_bridge_overhead", _stan_overhead),
]
# fmt: on


# ----------------------------------------------------------------------------------------------- checking, updating
def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def figures(entry) -> tuple[str, ...]:
    """The figures of one row as its file prints them (``—`` each where the JSON does not hold them yet)."""
    _, phrase, stem, fn = entry
    got = fn(payload(stem))
    return (MISSING,) * phrase.count("{}") if got is None else tuple(got)


def expected(entry) -> str:
    return entry[1].format(*figures(entry))


def present(entry) -> bool:
    return _norm(expected(entry)) in _norm((ROOT / entry[0]).read_text())


def _pattern(phrase: str) -> re.Pattern:
    """The phrase with any figures in its slots: literal text with flexible whitespace; a slot is one word, or any
    text without parentheses where the slot sits inside parentheses (a list of names)."""
    parts = phrase.split("{}")
    out = []
    for i, lit in enumerate(parts):
        out.append(r"\s+".join(re.escape(w) for w in re.split(r"\s+", lit)) if lit.strip() else (r"\s+" if lit else ""))
        if i < len(parts) - 1:
            inside = lit.endswith("(") and parts[i + 1].startswith(")")
            out.append(r"([^()]+?)" if inside else r"(\S+?)")
    return re.compile("".join(out))


def _refill(m: re.Match, new: tuple[str, ...]) -> str:
    """The matched phrase with its figures (the groups) replaced by ``new``."""
    s, pos, pieces, last = m.group(0), m.start(), [], 0
    for k, value in enumerate(new, start=1):
        pieces += [s[last : m.start(k) - pos], value]
        last = m.end(k) - pos
    return "".join(pieces) + s[last:]


def update_text(text: str, entries) -> tuple[str, list]:
    """``text`` with every row's figures rewritten from the JSON; and the rows whose phrase was not found."""
    lost = []
    for entry in entries:
        new = figures(entry)
        text, hits = _pattern(entry[1]).subn(lambda m, new=new: _refill(m, new), text)
        if not hits:
            lost.append(entry)
    return text, lost


def update(files: list[str] | None = None) -> list:
    """Rewrite the quoted figures of every file in ``FIGURES`` (or of ``files``) in place; the rows not found."""
    lost = []
    for file in dict.fromkeys(e[0] for e in FIGURES):
        if files and file not in files:
            continue
        path = ROOT / file
        old = path.read_text()
        new, missed = update_text(old, [e for e in FIGURES if e[0] == file])
        lost += missed
        if new != old:
            path.write_text(new)
            print(f"updated {file}")
    return lost


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--update", action="store_true", help="rewrite the quoted figures in place from the JSON")
    args = ap.parse_args(argv)
    if args.update:
        for entry in update():
            print(f"[NOT FOUND] {entry[0]}: {entry[1]!r} (reword it by hand)")
    missing = 0
    for entry in FIGURES:
        try:
            ok, text = present(entry), expected(entry)
        except Exception as e:  # a JSON without the field: say which
            ok, text = False, f"{entry[1]!r}: {type(e).__name__}: {e}"
        missing += not ok
        print(f"[{'ok' if ok else 'MISSING'}] {entry[0]} <- {entry[2]}.json: {text}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
