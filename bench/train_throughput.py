"""Training and evaluation throughput (images/s) of the demo architecture on this machine.

    .venv/bin/python bench/train_throughput.py [PACKAGE_DIR] [--batch 32] [--steps 5] [--threads 2]

Reads the architecture, kwargs and input size from the package's card (default: the bundled
ai_engine/packages/ophai-demo-screening) and times random batches: a training step
(forward, backward, AdamW) with the trainer's loss, and an inference_mode forward pass.
Prints figures only; nothing is asserted about time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from ai_engine.inference.card import load_card  # noqa: E402
from ai_engine.training import nets  # noqa: E402
from ai_engine.training.losses import make_loss  # noqa: E402

DEFAULT = REPO_ROOT / "ai_engine" / "packages" / "ophai-demo-screening"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    card = load_card(args.package)
    device = torch.device(args.device)
    model = nets.create(card.architecture, card.num_outputs, card.architecture_kwargs).to(device)
    size = card.input_size
    params = sum(p.numel() for p in model.parameters())
    print(
        f"{card.name} {card.version}: {card.architecture} {card.architecture_kwargs} at {size} px, "
        f"{params / 1e6:.2f} M parameters; batch {args.batch}, {args.threads} threads, {device}"
    )
    images = torch.randn(args.batch, 3, size, size, device=device)
    targets = torch.eye(card.num_outputs, device=device)[
        torch.randint(0, card.num_outputs, (args.batch,), device=device)
    ]
    loss_fn = make_loss(
        "ce" if card.task == "multiclass" else "bce",
        card.task,
        targets.cpu().numpy(),
        balance=False,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def train_step() -> None:
        loss = loss_fn(model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def eval_step() -> None:
        with torch.inference_mode():
            model(images)

    rates = {}
    for name, step, mode in (("training", train_step, True), ("evaluation", eval_step, False)):
        model.train(mode)
        step()  # warm-up
        began = time.perf_counter()
        for _ in range(args.steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - began
        rates[name] = args.steps * args.batch / seconds
        print(f"  {name:<10} {rates[name]:7.1f} images/s  ({seconds / args.steps:.2f} s per batch)")
    # The demo recipe: 948 training photos per epoch, 229 validation photos scored after it.
    epoch = 948 / rates["training"] + 229 / rates["evaluation"]
    print(f"  ≈ {epoch:.0f} s per epoch of the demo recipe (948 train + 229 validation photos)")


if __name__ == "__main__":
    main()
