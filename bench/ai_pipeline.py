"""Time the inference pipeline per stage on a 400 px photo and a camera-resolution photo.

    .venv/bin/python bench/ai_pipeline.py [PACKAGE_DIR] [--device auto|cpu|cuda] [--batch 8]
        [--repeat 3] [--throughput 1,32] [--quality ai_engine/packages/ophai-quality]

Without a package it times the bundled ``ai_engine/packages/ophai-screening`` (else a temporary
UNTRAINED resnet18 at 224 px: its findings are meaningless, its timings are not). The last
lines give photos/s of the whole pipeline (decode → crop → quality → the package → CAMs →
overlay PNG) at each ``--throughput`` batch size, with and without CAMs, and the device's name.
With ``--quality`` the per-photo table is timed again with that quality model after the
heuristic gate (its forward pass is part of the ``quality`` stage), as the worker runs it.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import timm
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from ai_engine.inference.decode import load_fundus_image  # noqa: E402
from ai_engine.inference.package import ModelPackage, write_package  # noqa: E402
from ai_engine.inference.predict import STAGES, Predictor, analyse_images  # noqa: E402

DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()
PHOTOS = {
    "400 px (ODIR)": DATA / "fundus/images/odir/normal/2996_left.jpg",
    "4752x3168 (camera)": DATA / "highres/1.jpg",
}


def default_package(tmp: Path) -> tuple[Path, bool]:
    bundled = REPO_ROOT / "ai_engine" / "packages" / "ophai-screening"
    if (bundled / "model.json").is_file():
        return bundled, False
    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=8)
    labels = [
        {"code": c, "zh": c, "en": c, "threshold": 0.5, "normal": c == "N"} for c in "NDGCAHMO"
    ]
    card = {
        "name": "bench-untrained-resnet18",
        "version": "0",
        "task": "multilabel",
        "architecture": "resnet18",
        "input_size": 224,
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "preprocessing": ["fundus_crop", "pad_square", "resize", "normalize"],
        "labels": labels,
        "cam": {"method": "layercam", "target_layers": ["layer4.-1", "layer3.-1"]},
        "weights": {"file": "model.safetensors", "sha256": "0" * 64},
        "demonstration": True,
        "evidence": "untrained, timing only",
    }
    write_package(tmp / "bench", model, card)
    return tmp / "bench", True


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", type=Path)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--throughput",
        default="1,32",
        help="batch sizes for the photos/s lines (comma-separated; empty: skip)",
    )
    parser.add_argument(
        "--quality", type=Path, default=None, help="a quality package (card role quality)"
    )
    parser.add_argument(
        "--also",
        type=Path,
        action="append",
        default=[],
        help="another package run in the same per-photo pipeline (repeat; e.g. every default "
        "package: --also ai_engine/packages/ophai-dr --also ai_engine/packages/ophai-dme)",
    )
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        path, untrained = (args.package, False) if args.package else default_package(Path(tmp))
        package = ModelPackage.load(path, args.device)
        card = package.card
        print(
            f"package: {card.name} {card.version} ({card.architecture}, {card.input_size} px, cam {card.cam.method})"
        )
        if untrained:
            print(
                "NOTE: temporary UNTRAINED model, generated for timing only; findings are meaningless."
            )
        name = (
            torch.cuda.get_device_name(package.device)
            if package.device.type == "cuda"
            else f"CPU, {torch.get_num_threads()} torch threads"
        )
        print(f"device: {package.device} ({name}); torch {torch.__version__}")
        missing = [str(p) for p in PHOTOS.values() if not p.exists()]
        if missing:
            print(f"photos missing: {missing}")
            return 1
        gate = None if args.quality is None else ModelPackage.load(args.quality, args.device)
        base = [package, *(ModelPackage.load(extra, args.device) for extra in args.also)]
        for packages in (base, [*base, gate]) if gate else (base,):
            analyse_images([next(iter(PHOTOS.values()))], packages, cam=True)  # warm-up
            names = ", ".join(f"{p.card.name} {p.card.version}" for p in packages)
            with_gate = f" ({names})"
            print(
                f"\nper photo{with_gate}, median of {args.repeat} runs, seconds; cam and png cover "
                "every CAM"
            )
            header = "".join(f"{s:>9s}" for s in (*STAGES, "total"))
            print(f"{'photo':22s}{header}  CAMs")
            for name, photo in PHOTOS.items():
                results = [
                    analyse_images([photo], packages, cam=True)[0] for _ in range(args.repeat)
                ]
                runs = [r.timings for r in results]
                cams = sum(
                    f.heatmap is not None for p in results[0].predictions for f in p.findings
                )
                cells = "".join(
                    f"{np.median([r[s] for r in runs]):9.3f}" for s in (*STAGES, "total")
                )
                print(f"{name:22s}{cells}  {cams}")

        predictor = Predictor(package)
        photo = np.asarray(load_fundus_image(PHOTOS["400 px (ODIR)"]))
        tensor, _ = predictor.prepare(photo)
        batch = torch.stack([tensor] * args.batch)
        predictor.predict_tensors(list(batch), args.batch)
        began = time.perf_counter()
        for _ in range(args.repeat):
            predictor.predict_tensors(list(batch), args.batch)
        sync(package.device)
        ours = (time.perf_counter() - began) / args.repeat
        bare = package.model
        device_batch = batch.to(package.device)
        with torch.inference_mode():
            bare(device_batch)
            sync(package.device)
            began = time.perf_counter()
            for _ in range(args.repeat):
                bare(device_batch)
            sync(package.device)
        bare_time = (time.perf_counter() - began) / args.repeat
        print(
            f"\nforward, batch {args.batch}: ours {ours:.3f} s ({args.batch / ours:.1f} img/s), "
            f"bare timm forward {bare_time:.3f} s; ratio {ours / bare_time:.2f}"
        )

        sources = [PHOTOS["400 px (ODIR)"]] * args.batch
        began = time.perf_counter()
        analyse_images(sources, [package], cam=False, batch_size=args.batch)
        no_cam = time.perf_counter() - began
        began = time.perf_counter()
        analyse_images(sources, [package], cam=True, batch_size=args.batch)
        with_cam = time.perf_counter() - began
        print(
            f"pipeline throughput, {args.batch} x 400 px photos: {args.batch / no_cam:.1f} img/s without CAMs, "
            f"{args.batch / with_cam:.1f} img/s with CAMs + overlays"
        )
        for size in [int(b) for b in args.throughput.split(",") if b.strip()]:
            photos = [PHOTOS["400 px (ODIR)"]] * max(size, 8)
            rates = []
            for cam in (False, True):
                analyse_images(photos[:size], [package], cam=cam, batch_size=size)  # warm-up
                sync(package.device)
                began = time.perf_counter()
                analyse_images(photos, [package], cam=cam, batch_size=size)
                sync(package.device)
                rates.append(len(photos) / (time.perf_counter() - began))
            print(
                f"whole pipeline, batch {size}, {len(photos)} x 400 px photos: "
                f"{rates[0]:.1f} photos/s without CAMs, {rates[1]:.1f} photos/s with CAMs + overlays"
            )
        print(f"peak RSS: {peak_rss_mb():.0f} MiB")
        if package.device.type == "cuda":
            print(f"peak CUDA memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
