"""Bad command lines, as an adversarial user would type them: each gets the expected exit code (2: a bad
argument, refused while parsing; 1: refused or failed while running), exactly one line on stderr that names
the argument or the path, no traceback, nothing on stdout, and no file created, changed or removed."""

from __future__ import annotations

import pytest

from .conftest import run_cli, snapshot

M = ["--model", "{d}/model"]
FAST = ["--max-steps", "5", "--lr", "0.1", "--fixed", "--draws", "100"]

CASES = [
    # --- varinf fit: numbers --------------------------------------------------------------------------
    ("fit-max-steps-negative", ["fit", "normal_normal", "--max-steps", "-1"], 2, ["--max-steps", ">= 1", "'-1'"]),
    ("fit-max-steps-zero", ["fit", "normal_normal", "--max-steps", "0"], 2, ["--max-steps", ">= 1"]),
    ("fit-max-steps-float", ["fit", "normal_normal", "--max-steps", "1e3"], 2, ["--max-steps", "integer"]),
    ("fit-lr-zero", ["fit", "normal_normal", "--lr", "0"], 2, ["--lr", "> 0", "auto"]),
    ("fit-lr-negative", ["fit", "normal_normal", "--lr", "-0.1"], 2, ["--lr", "> 0"]),
    ("fit-lr-nan", ["fit", "normal_normal", "--lr", "nan"], 2, ["--lr"]),
    ("fit-lr-word", ["fit", "normal_normal", "--lr", "fast"], 2, ["--lr", "'fast'"]),
    ("fit-tol-negative", ["fit", "normal_normal", "--tol", "-1"], 2, ["--tol", "> 0"]),
    ("fit-particles-zero", ["fit", "normal_normal", "--particles", "0"], 2, ["--particles", ">= 1"]),
    ("fit-draws-one", ["fit", "normal_normal", "--draws", "1"], 2, ["--draws", ">= 100"]),
    (
        "fit-draws-below-diagnostics",
        ["fit", "normal_normal", "--draws", "10", "-o", "{d}/new_out"],
        2,
        ["--draws", ">= 100"],
    ),
    ("fit-seed-negative", ["fit", "normal_normal", "--seed", "-3"], 2, ["--seed", ">= 0"]),
    ("fit-dtype-half", ["fit", "normal_normal", "--dtype", "float16"], 2, ["--dtype", "float16"]),
    ("fit-family-unknown", ["fit", "normal_normal", "--family", "gaussian"], 2, ["--family", "fullrank"]),
    ("fit-method-unknown", ["fit", "normal_normal", "--method", "nuts"], 2, ["--method", "advi"]),
    ("fit-evidence-unknown", ["fit", "normal_normal", "--evidence", "harmonic"], 2, ["--evidence", "bridge"]),
    (
        "fit-evidence-budget-negative",
        ["fit", "normal_normal", "--evidence-budget", "-5"],
        2,
        ["--evidence-budget", ">= 0"],
    ),
    ("fit-legacy-float64", ["fit", "normal_normal", "--float64"], 2, ["unrecognized arguments: --float64"]),
    ("fit-no-target", ["fit"], 2, ["target"]),
    ("fit-gradient-dreg-elbo", ["fit", "normal_normal", "--gradient", "dreg", *FAST], 1, ["gradient", "dreg"]),
    # --- varinf fit: model files ----------------------------------------------------------------------
    ("fit-unknown-example", ["fit", "no_such_model"], 1, ["no_such_model", "built-in example"]),
    ("fit-missing-file", ["fit", "{d}/missing.py"], 1, ["{d}/missing.py: no such file"]),
    ("fit-folder-as-model", ["fit", "{d}/folder.py"], 1, ["{d}/folder.py: is a directory"]),
    ("fit-not-python", ["fit", "{d}/points.csv"], 1, ["{d}/points.csv", ".py"]),
    (
        "fit-syntax-error",
        ["fit", "{d}/syntax.py"],
        1,
        ["could not load model file {d}/syntax.py: SyntaxError at line 2"],
    ),
    (
        "fit-import-error",
        ["fit", "{d}/imports.py"],
        1,
        ["could not load model file {d}/imports.py: ModuleNotFoundError at line 2", "no_such_module_anywhere"],
    ),
    ("fit-model-raises", ["fit", "{d}/raises.py"], 1, ["{d}/raises.py: ZeroDivisionError at line 4"]),
    ("fit-model-exits", ["fit", "{d}/exits.py"], 1, ["{d}/exits.py: SystemExit at line 2", "sys.exit(3)"]),
    ("fit-no-model-defined", ["fit", "{d}/nomodel.py"], 1, ["{d}/nomodel.py", "define `model`"]),
    ("fit-int64-log-joint", ["fit", "{d}/int64.py", *FAST], 1, ["torch.int64", "real floating point"]),
    ("fit-complex-log-joint", ["fit", "{d}/complex.py", *FAST], 1, ["torch.complex64", "real part"]),
    # --- varinf fit: outputs --------------------------------------------------------------------------
    (
        "fit-output-is-a-file",
        ["fit", "{d}/good.py", "-o", "{d}/in.png", *FAST],
        1,
        ["{d}/in.png: exists and is not a directory"],
    ),
    ("fit-output-empty", ["fit", "{d}/good.py", "-o", "", *FAST], 2, ["-o/--output: must be a path, got ''"]),
    (
        "fit-output-exists",
        ["fit", "{d}/good.py", "-o", "{d}/done", *FAST],
        1,
        ["{d}/done/summary.txt: exists; pass --force"],
    ),
    # --- varinf compress ------------------------------------------------------------------------------
    (
        "compress-onto-input",
        ["compress", "{d}/in.png", "-o", "{d}/in.png", "--force", *M],
        1,
        ["{d}/in.png: is the input file", "never replaces an input"],
    ),
    (
        "compress-onto-symlinked-input",
        ["compress", "{d}/in.png", "-o", "{d}/link.png", "--force", *M],
        1,
        ["{d}/link.png: is the input file ({d}/in.png)"],
    ),
    (
        "compress-onto-hard-linked-input",
        ["compress", "{d}/in.png", "-o", "{d}/hard.png", "--force", *M],
        1,
        ["{d}/hard.png: is the input file"],
    ),
    (
        "compress-onto-model-weights",
        ["compress", "{d}/in.png", "-o", "{d}/model/model.safetensors", "--force", *M],
        1,
        ["{d}/model/model.safetensors: is the input file"],
    ),
    ("compress-folder-input", ["compress", "{d}/adir", "-o", "{d}/x.vif", *M], 1, ["{d}/adir: is a directory"]),
    ("compress-missing-input", ["compress", "{d}/nope.png", "-o", "{d}/x.vif", *M], 1, ["{d}/nope.png: no such file"]),
    (
        "compress-folder-output",
        ["compress", "{d}/in.png", "-o", "{d}/adir", "--force", *M],
        1,
        ["{d}/adir: is a directory"],
    ),
    (
        "compress-existing-output",
        ["compress", "{d}/in.png", "-o", "{d}/precious.vif", *M],
        1,
        ["{d}/precious.vif: exists; pass --force"],
    ),
    (
        "compress-onto-fifo",
        ["compress", "{d}/in.png", "-o", "{d}/fifo", "--force", *M],
        1,
        ["{d}/fifo: exists and is not a regular file"],
    ),
    (
        "compress-parent-is-a-file",
        ["compress", "{d}/in.png", "-o", "{d}/in.png/x.vif", *M],
        1,
        ["{d}/in.png/x.vif", "{d}/in.png is not a directory"],
    ),
    (
        "compress-quality-negative",
        ["compress", "{d}/in.png", "-o", "{d}/x.vif", "-q", "-1", *M],
        2,
        ["--quality", ">= 0"],
    ),
    (
        "compress-quality-too-high",
        ["compress", "{d}/in.png", "-o", "{d}/x.vif", "-q", "99", *M],
        1,
        ["quality must lie in [0, 1]"],
    ),
    (
        "compress-lossless-quality",
        ["compress", "--lossless", "{d}/in.png", "-o", "{d}/x.vif", "-q", "2"],
        1,
        ["--quality applies to lossy"],
    ),
    ("compress-no-output", ["compress", "{d}/in.png"], 2, ["-o/--output"]),
    (
        "compress-bad-model-folder",
        ["compress", "{d}/in.png", "-o", "{d}/x.vif", "--model", "{d}/adir"],
        1,
        ["no codec in {d}/adir"],
    ),
    (
        "compress-not-an-image",
        ["compress", "{d}/docs.txt", "-o", "{d}/x.vif", *M],
        1,
        ["{d}/docs.txt: cannot read as an image"],
    ),
    # --- varinf decompress ----------------------------------------------------------------------------
    (
        "decompress-not-vif",
        ["decompress", "{d}/garbage.vif", "-o", "{d}/out.png", *M],
        1,
        ["{d}/garbage.vif: not a .vif file"],
    ),
    (
        "decompress-bad-extension",
        ["decompress", "{d}/a.vif", "-o", "{d}/out.xyz", *M],
        1,
        ["{d}/out.xyz: unknown output extension"],
    ),
    (
        "decompress-lossy-to-npy",
        ["decompress", "{d}/a.vif", "-o", "{d}/out.npy", *M],
        1,
        ["{d}/out.npy: a lossy .vif decodes to an image"],
    ),
    (
        "decompress-onto-input",
        ["decompress", "{d}/a.vif", "-o", "{d}/a.vif", "--force", *M],
        1,
        ["{d}/a.vif: is the input file"],
    ),
    ("decompress-folder-input", ["decompress", "{d}/adir", "-o", "{d}/out.png", *M], 1, ["{d}/adir: is a directory"]),
    (
        "decompress-existing-output",
        ["decompress", "{d}/a.vif", "-o", "{d}/in.png", *M],
        1,
        ["{d}/in.png: exists; pass --force"],
    ),
    # --- varinf cavi ----------------------------------------------------------------------------------
    ("gmm-components-zero", ["cavi", "gmm", "{d}/points.csv", "--components", "0"], 2, ["--components", ">= 1"]),
    ("gmm-tol-zero", ["cavi", "gmm", "{d}/points.csv", "--tol", "0"], 2, ["--tol", "> 0"]),
    (
        "gmm-weight-threshold",
        ["cavi", "gmm", "{d}/points.csv", "--weight-threshold", "2"],
        2,
        ["--weight-threshold", "[0, 1)"],
    ),
    ("gmm-legacy-float32", ["cavi", "gmm", "{d}/points.csv", "--float32"], 2, ["--float32"]),
    (
        "gmm-labels-onto-input",
        ["cavi", "gmm", "{d}/points.csv", "-o", "{d}/points.csv", "--force"],
        1,
        ["{d}/points.csv: is the input file"],
    ),
    (
        "gmm-labels-exist",
        ["cavi", "gmm", "{d}/points.csv", "-o", "{d}/done/labels.txt"],
        1,
        ["{d}/done/labels.txt: exists; pass --force"],
    ),
    ("gmm-empty-data", ["cavi", "gmm", "{d}/empty.csv"], 1, ["{d}/empty.csv: no numbers"]),
    ("gmm-folder-data", ["cavi", "gmm", "{d}/adir"], 1, ["{d}/adir: is a directory"]),
    ("lda-topics-zero", ["cavi", "lda", "{d}/docs.txt", "--topics", "0"], 2, ["--topics", ">= 1"]),
    ("lda-test-fraction", ["cavi", "lda", "{d}/docs.txt", "--test-fraction", "1.5"], 2, ["--test-fraction"]),
    ("lda-batch-size", ["cavi", "lda", "{d}/docs.txt", "--batch-size", "-8"], 2, ["--batch-size", ">= 1"]),
    # --- varinf vae -----------------------------------------------------------------------------------
    ("vae-missing-data", ["vae", "train", "-o", "{d}/run", "--data", "{d}/nope"], 1, ["{d}/nope: no such folder"]),
    ("vae-latents-zero", ["vae", "train", "-o", "{d}/run", "--data", "{d}/imgs", "--latents", "0"], 2, ["--latents"]),
    (
        "vae-latents-layers",
        ["vae", "train", "-o", "{d}/run", "--data", "{d}/imgs", "--latents", "5;2"],
        2,
        ["--latents", "'5;2'"],
    ),
    ("vae-hidden-words", ["vae", "train", "-o", "{d}/run", "--data", "{d}/imgs", "--hidden", "a,b"], 2, ["--hidden"]),
    ("vae-lr-zero", ["vae", "train", "-o", "{d}/run", "--data", "{d}/imgs", "--lr", "0"], 2, ["--lr", "> 0"]),
    (
        "vae-run-is-a-file",
        ["vae", "train", "-o", "{d}/in.png", "--data", "{d}/imgs"],
        1,
        ["{d}/in.png: exists and is not a directory"],
    ),
    (
        "vae-run-not-empty",
        ["vae", "train", "-o", "{d}/done", "--data", "{d}/imgs"],
        1,
        ["{d}/done exists and is not empty"],
    ),
    (
        "vae-run-is-data",
        ["vae", "train", "-o", "{d}/imgs", "--data", "{d}/imgs", "--force"],
        1,
        ["{d}/imgs: is the --data folder"],
    ),
    ("vae-eval-missing-run", ["vae", "eval", "{d}/nope"], 1, ["{d}/nope: no such folder"]),
    ("vae-eval-k-zero", ["vae", "eval", "{d}/adir", "--k", "0"], 2, ["--k", ">= 1"]),
    ("vae-legacy-positional-run", ["vae", "train", "{d}/run", "--data", "{d}/imgs"], 2, ["required: -o/--output"]),
    # --- varinf codec ---------------------------------------------------------------------------------
    ("codec-train-steps-zero", ["codec", "train", "-o", "{d}/run", "--steps", "0"], 2, ["--steps", ">= 1"]),
    ("codec-train-lambda-negative", ["codec", "train", "-o", "{d}/run", "--lambdas", "-1"], 2, ["--lambdas"]),
    (
        "codec-train-over-a-model",
        ["codec", "train", "-o", "{d}/codec_run", "--images", "{d}/imgs"],
        1,
        ["{d}/codec_run/model.json: exists; pass --force"],
    ),
    ("codec-train-patch-size", ["codec", "train", "-o", "{d}/run", "--patch-size", "8"], 2, ["--patch-size", ">= 16"]),
    ("codec-eval-missing-images", ["codec", "eval", "--images", "{d}/nope", *M], 1, ["{d}/nope: no such folder"]),
    (
        "codec-eval-quality-negative",
        ["codec", "eval", "--images", "{d}/imgs", "--qualities", "-1", *M],
        2,
        ["--qualities"],
    ),
    (
        "codec-eval-output-exists",
        ["codec", "eval", "--images", "{d}/imgs", "-o", "{d}/precious.vif", *M],
        1,
        ["{d}/precious.vif: exists; pass --force"],
    ),
    # --- varinf posteriordb and the top level ---------------------------------------------------------
    ("pdb-root-missing", ["posteriordb", "list", "--root", "{d}/nope"], 1, ["{d}/nope: no such folder"]),
    ("pdb-max-steps-zero", ["posteriordb", "fit", "x", "--max-steps", "0"], 2, ["--max-steps", ">= 1"]),
    ("unknown-command", ["frobnicate"], 2, ["invalid choice", "frobnicate"]),
]


@pytest.mark.parametrize(("argv", "code", "needles"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_invocation_is_refused_cleanly(workdir, capsys, argv, code, needles):
    d = str(workdir)
    before = snapshot(workdir)
    got, out, err = run_cli([a.replace("{d}", d) for a in argv], capsys)
    assert got == code, err
    assert err.count("\n") == 1 and err.endswith("\n"), f"not one line: {err!r}"
    assert ": error: " in err and "Traceback" not in err
    for needle in needles:
        assert needle.replace("{d}", d) in err
    assert out == ""
    assert snapshot(workdir) == before  # nothing created, changed or removed (no temporary file left either)


def test_the_table_is_large_and_covers_every_command():
    assert len(CASES) >= 30
    commands = {" ".join(c[1][:2]) if c[1][0] in ("cavi", "vae", "codec", "posteriordb") else c[1][0] for c in CASES}
    assert commands >= {"fit", "compress", "decompress", "cavi gmm", "cavi lda", "vae train", "vae eval",
                        "codec train", "codec eval", "posteriordb list", "posteriordb fit"}  # fmt: skip
