"""Portable lossy files: the same bytes and the same decoded pixels under other CPU kernels and thread counts.

Fresh processes encode Kodak images at several qualities and decode them under ``ATEN_CPU_CAPABILITY=default``
(generic kernels), ``avx2``, the machine's own kernels, and with 2 threads; each also decodes the files written by
the first (native) process. Recorded per configuration: SHA-256 of every file and of every decoded image; the
result says whether all configurations agree.

Run:  python benchmarks/codec_portability.py [--model DIR] [--limit 6]
      python benchmarks/codec_portability.py --report

Writes benchmarks/results/codec_portability.{json,md}. Kodak is evaluation data only. Never imported by the package.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from provenance import run_environment

RESULTS = Path(__file__).resolve().parent / "results"
KODAK = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kodak"
CONFIGS = {  # name -> (ATEN_CPU_CAPABILITY or None for the machine's own, threads)
    "native, 1 thread": (None, 1),
    "default, 1 thread": ("default", 1),
    "avx2, 1 thread": ("avx2", 1),
    "native, 2 threads": (None, 2),
}

_CHILD = r"""
import hashlib, json, sys
from pathlib import Path
import numpy as np, torch
from PIL import Image
from varinf.compression import compress_image, decompress_image, load_codec
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
codec = load_codec(args["model"])
out = {"files": {}, "pixels": {}, "foreign_pixels": {}, "capability": torch.backends.cpu.get_cpu_capability()}
for path in args["images"]:
    img = np.asarray(Image.open(path).convert("RGB"))
    for q in args["qualities"]:
        key = f"{Path(path).name}@{q:g}"
        data = compress_image(img, codec, q).data
        out["files"][key] = hashlib.sha256(data).hexdigest()
        out["pixels"][key] = hashlib.sha256(decompress_image(data, codec).tobytes()).hexdigest()
        foreign = Path(args["foreign"]) / (key + ".vif")
        if foreign.is_file():
            out["foreign_pixels"][key] = hashlib.sha256(decompress_image(foreign.read_bytes(), codec).tobytes()).hexdigest()
        elif args["write"]:
            foreign.write_bytes(data)
print(json.dumps(out))
"""


def measure(args) -> dict:
    from varinf.compression import load_codec

    codec = load_codec(args.model)
    images = [str(p) for p in sorted(Path(args.kodak).glob("kodim*.png"))[: args.limit]]
    if not images:
        raise SystemExit(f"no Kodak images under {args.kodak}")
    qualities = [0.0, codec.default_quality, codec.max_quality]
    runs = {}
    with tempfile.TemporaryDirectory() as folder:
        for i, (name, (capability, threads)) in enumerate(CONFIGS.items()):
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            env.pop("ATEN_CPU_CAPABILITY", None)
            if capability:
                env["ATEN_CPU_CAPABILITY"] = capability
            payload = {"model": args.model, "images": images, "qualities": qualities, "threads": threads,
                       "foreign": folder, "write": i == 0}  # fmt: skip
            done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(payload)], env=env, capture_output=True,
                                  text=True, check=True)  # fmt: skip
            runs[name] = json.loads(done.stdout.strip().splitlines()[-1])
            print(name, runs[name]["capability"], flush=True)
    first = next(iter(runs.values()))
    agree = {
        "files": all(r["files"] == first["files"] for r in runs.values()),
        "pixels": all(r["pixels"] == first["pixels"] for r in runs.values()),
        "foreign_pixels": all(r["foreign_pixels"] == first["pixels"] for r in list(runs.values())[1:]),
    }
    return {"model_id": codec.model_id().hex(), "prior": codec.config.prior, "images": [Path(p).name for p in images],
            "qualities": qualities, "configs": {k: {"capability": v[0], "threads": v[1]} for k, v in CONFIGS.items()},
            "runs": runs, "agree": agree, "environment": run_environment(1)}  # fmt: skip


def markdown(r: dict) -> str:
    env = r["environment"]
    yes = lambda v: "identical" if v else "**differ**"
    n = len(r["images"]) * len(r["qualities"])
    lines = [
        f"# Portability of lossy files ({r['prior']}, id {r['model_id']})",
        "",
        f"`{env['command']}` at commit {env['commit']}; torch {env['torch']}, numpy {env['numpy']}; load average "
        f"{env['load_average']}.",
        "",
        f"{len(r['images'])} Kodak images ({', '.join(r['images'])}) x qualities {r['qualities']} = {n} files, each "
        "configuration a fresh process:",
        "",
        "| configuration | torch CPU capability | files written | decoded pixels | files of the first process, decoded |",
        "|---|---|---|---|---|",
    ]
    first = next(iter(r["runs"].values()))
    for name, run in r["runs"].items():
        same = lambda a, b: sum(a[k] == b[k] for k in b)
        foreign = f"{same(run['foreign_pixels'], first['pixels'])}/{n} same" if run["foreign_pixels"] else "(writer)"
        lines.append(f"| {name} | {run['capability']} | {same(run['files'], first['files'])}/{n} same | "
                     f"{same(run['pixels'], first['pixels'])}/{n} same | {foreign} |")  # fmt: skip
    a = r["agree"]
    lines += ["", f"File bytes: {yes(a['files'])}; decoded pixels: {yes(a['pixels'])}; files decoded elsewhere: "
                  f"{yes(a['foreign_pixels'])}."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="codec directory (default: shipped)")
    parser.add_argument("--kodak", default=str(KODAK))
    parser.add_argument("--limit", type=int, default=6, help="first N Kodak images")
    parser.add_argument("--name", default="codec_portability")
    parser.add_argument("--report", action="store_true", help="markdown again from the JSON only")
    args = parser.parse_args()
    path = RESULTS / f"{args.name}.json"
    result = json.loads(path.read_text()) if args.report else measure(args)
    if not args.report:
        path.write_text(json.dumps(result, indent=1) + "\n")
    text = markdown(result)
    (RESULTS / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
