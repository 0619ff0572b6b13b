"""Rate-distortion evaluation: the learned codec (real files) and Pillow's JPEG / WebP / AVIF on the same images.

Every point is measured on actual encoded bytes: ``bpp`` = file bits / pixels, averaged over images, with
PSNR (dB) and MS-SSIM of the decoded pixels averaged likewise. For the learned codec each point also carries
the model's estimated rate, so :attr:`RDPoint.rate_ratio` = real payload bits / estimated bits measures the
entropy coder's overhead.

Example::

    >>> import numpy as np
    >>> from varinf.compression.evaluation.evaluate import evaluate_pillow
    >>> img = np.random.default_rng(0).integers(0, 256, (168, 168, 3), dtype=np.uint8)
    >>> [p.setting for p in evaluate_pillow([img], "JPEG", [50, 90])]
    [50.0, 90.0]
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..lossy.image_file import compress_image, decompress_image
from ..lossy.model import ImageCodec
from .bdrate import bd_rate
from .metrics import ms_ssim, psnr

__all__ = [
    "BASELINE_QUALITIES",
    "PILLOW_FORMATS",
    "RDPoint",
    "RDReport",
    "bd_rates",
    "build_report",
    "evaluate_learned",
    "evaluate_pillow",
    "rd_report",
]

PILLOW_FORMATS = ("JPEG", "WEBP", "AVIF")
BASELINE_QUALITIES = {
    "JPEG": [5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95],
    "WEBP": [5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95],
    "AVIF": [10, 20, 30, 40, 50, 60, 70, 80, 90],
}


@dataclass
class RDPoint:
    """One operating point averaged over a set of images.

    Attributes:
        codec: ``"learned"``, ``"JPEG"``, ``"WEBP"`` or ``"AVIF"``.
        setting: the quality knob (codec quality level, or Pillow's 0-100 quality).
        bpp: mean bits per pixel of the real files (headers included).
        psnr: mean PSNR in dB; ms_ssim: mean MS-SSIM.
        estimated_bpp: mean model rate (learned codec only).
        payload_bits, estimated_bits: totals over the images (learned codec only).
        encode_s, decode_s: total wall time over the images.
        decode_cpu_s: total CPU time of decoding (``time.process_time``; equals the wall time on an idle
            machine, excludes waiting for a shared core).
    """

    codec: str
    setting: float
    bpp: float
    psnr: float
    ms_ssim: float
    estimated_bpp: float | None = None
    payload_bits: int | None = None
    estimated_bits: float | None = None
    encode_s: float = 0.0
    decode_s: float = 0.0
    decode_cpu_s: float = 0.0

    @property
    def rate_ratio(self) -> float | None:
        """Real payload bits / model-estimated bits (learned codec only)."""
        if self.payload_bits is None or not self.estimated_bits:
            return None
        return self.payload_bits / self.estimated_bits


def evaluate_learned(
    codec: ImageCodec, images: list[np.ndarray], qualities: list[float], progress: bool | None = None
) -> list[RDPoint]:
    """Compress and decompress every image at every quality; returns one point per quality."""
    points = []
    bar = tqdm(total=len(images) * len(qualities), disable=progress is False, desc="learned")
    for q in qualities:
        bpp, ps, ms, est, pay, ebits, te, td, tc = [], [], [], [], 0, 0.0, 0.0, 0.0, 0.0
        for img in images:
            t0 = time.perf_counter()
            result = compress_image(img, codec, q)
            t1, c1 = time.perf_counter(), time.process_time()
            out = decompress_image(result.data, codec)
            td, tc = td + time.perf_counter() - t1, tc + time.process_time() - c1
            te += t1 - t0
            n = img.shape[0] * img.shape[1]
            bpp.append(result.bpp)
            est.append(result.estimated_bits / n)
            pay += result.payload_bits
            ebits += result.estimated_bits
            ps.append(psnr(img, out))
            ms.append(ms_ssim(img, out))
            bar.update(1)
        points.append(RDPoint("learned", float(q), float(np.mean(bpp)), float(np.mean(ps)), float(np.mean(ms)),
                              float(np.mean(est)), pay, ebits, te, td, tc))  # fmt: skip
    bar.close()
    return points


def _pillow_roundtrip(img: np.ndarray, fmt: str, quality: int) -> tuple[bytes, np.ndarray, float, float]:
    t0 = time.perf_counter()
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, fmt, quality=int(quality))
    data = buf.getvalue()
    t1 = time.perf_counter()
    with Image.open(io.BytesIO(data)) as im:
        out = np.asarray(im.convert("RGB"))
    return data, out, t1 - t0, time.perf_counter() - t1


def evaluate_pillow(
    images: list[np.ndarray], fmt: str, qualities: list[int], progress: bool | None = None
) -> list[RDPoint]:
    """Pillow's encoder ``fmt`` (JPEG, WEBP or AVIF; default settings) at each 0-100 ``quality``."""
    fmt = fmt.upper()
    if fmt not in PILLOW_FORMATS:
        raise ValueError(f"format must be one of {PILLOW_FORMATS} (got {fmt!r})")
    points = []
    bar = tqdm(total=len(images) * len(qualities), disable=progress is False, desc=fmt)
    for q in qualities:
        bpp, ps, ms, te, td = [], [], [], 0.0, 0.0
        for img in images:
            data, out, t_enc, t_dec = _pillow_roundtrip(img, fmt, q)
            te, td = te + t_enc, td + t_dec
            bpp.append(8 * len(data) / (img.shape[0] * img.shape[1]))
            ps.append(psnr(img, out))
            ms.append(ms_ssim(img, out))
            bar.update(1)
        points.append(RDPoint(fmt, float(q), float(np.mean(bpp)), float(np.mean(ps)), float(np.mean(ms)),
                              encode_s=te, decode_s=td))  # fmt: skip
    bar.close()
    return points


def _msssim_db(value: float) -> float:
    return -10.0 * math.log10(max(1.0 - value, 1e-12))


@dataclass
class RDReport:
    """RD points per codec plus BD-rates (percent, vs JPEG; negative = fewer bits at equal quality).

    ``bd_rate_psnr[name]`` uses PSNR, ``bd_rate_ms_ssim[name]`` uses MS-SSIM in dB (:math:`-10\\log_{10}(1 - m)`);
    a BD-rate is ``nan`` when the two curves do not overlap in quality. ``psnr_overlap[name]`` is the PSNR
    interval (dB) over which the PSNR BD-rate averages (the intersection of the two curves' ranges).
    """

    points: dict[str, list[RDPoint]]
    bd_rate_psnr: dict[str, float] = field(default_factory=dict)
    bd_rate_ms_ssim: dict[str, float] = field(default_factory=dict)
    psnr_overlap: dict[str, tuple[float, float]] = field(default_factory=dict)
    num_images: int = 0

    def to_json(self) -> str:
        return json.dumps({"num_images": self.num_images,
                           "points": {k: [asdict(p) | {"rate_ratio": p.rate_ratio} for p in v]
                                      for k, v in self.points.items()},
                           "bd_rate_vs_jpeg_psnr_percent": self.bd_rate_psnr,
                           "bd_rate_vs_jpeg_ms_ssim_percent": self.bd_rate_ms_ssim,
                           "psnr_overlap_db": self.psnr_overlap}, indent=2)  # fmt: skip

    def to_markdown(self) -> str:
        lines = ["| codec | setting | bpp (file) | PSNR dB | MS-SSIM | est. bpp | real/est. bits |",
                 "|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, pts in self.points.items():
            for p in pts:
                est = f"{p.estimated_bpp:.4f}" if p.estimated_bpp is not None else ""
                ratio = f"{p.rate_ratio:.4f}" if p.rate_ratio is not None else ""
                lines.append(
                    f"| {name} | {p.setting:g} | {p.bpp:.4f} | {p.psnr:.2f} | {p.ms_ssim:.4f} | {est} | {ratio} |"
                )
        if self.bd_rate_psnr:
            lines += ["", "| codec | BD-rate vs JPEG (PSNR) | PSNR range averaged (dB) | BD-rate vs JPEG (MS-SSIM dB) |",
                      "|---|---|---|---|"]  # fmt: skip
            for name in self.bd_rate_psnr:
                lo, hi = self.psnr_overlap[name]
                lines.append(f"| {name} | {self.bd_rate_psnr[name]:+.1f}% | {lo:.2f} .. {hi:.2f} | "
                             f"{self.bd_rate_ms_ssim[name]:+.1f}% |")  # fmt: skip
        return "\n".join(lines)


def _safe_bd(anchor: list[RDPoint], test: list[RDPoint], quality) -> float:
    try:
        return bd_rate([p.bpp for p in anchor], [quality(p) for p in anchor],
                       [p.bpp for p in test], [quality(p) for p in test])  # fmt: skip
    except ValueError:
        return float("nan")


def bd_rates(anchor: list[RDPoint], test: list[RDPoint]) -> tuple[float, float]:
    """BD-rate (percent) of ``test`` vs ``anchor`` by PSNR and by MS-SSIM in dB; ``nan`` where the curves'
    qualities do not overlap."""
    return _safe_bd(anchor, test, lambda p: p.psnr), _safe_bd(anchor, test, lambda p: _msssim_db(p.ms_ssim))


def rd_report(
    codec: ImageCodec,
    images: list[np.ndarray],
    qualities: list[float],
    baselines: bool | dict[str, list[int]] = True,
    progress: bool | None = None,
    baseline_points: dict[str, list[RDPoint]] | None = None,
) -> RDReport:
    """Learned-codec points, and (if ``baselines``) Pillow points and BD-rates vs JPEG, on ``images``.

    ``baseline_points`` (e.g. :func:`evaluate_pillow` results saved earlier on the same images) are used
    instead of running Pillow again.
    """
    points = {"learned": evaluate_learned(codec, images, qualities, progress)}
    if baseline_points is not None:
        points.update(baseline_points)
    elif baselines:
        settings = BASELINE_QUALITIES if baselines is True else baselines
        for fmt, qs in settings.items():
            points[fmt] = evaluate_pillow(images, fmt, qs, progress)
    return build_report(points, len(images))


def build_report(points: dict[str, list[RDPoint]], num_images: int) -> RDReport:
    """An :class:`RDReport` of already measured points, with BD-rates vs ``points["JPEG"]`` when present."""
    report = RDReport(points, num_images=num_images)
    if "JPEG" in points:
        for name, pts in points.items():
            if name == "JPEG":
                continue
            report.bd_rate_psnr[name], report.bd_rate_ms_ssim[name] = bd_rates(points["JPEG"], pts)
            lo = max(min(p.psnr for p in pts), min(p.psnr for p in points["JPEG"]))
            hi = min(max(p.psnr for p in pts), max(p.psnr for p in points["JPEG"]))
            report.psnr_overlap[name] = (lo, hi)
    return report
