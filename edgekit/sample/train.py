"""Train the bundled sample detector (deterministic; a few minutes on a 2-core CPU).

    python -m edgekit.sample.train --out edgekit/sample/weights.pt

The training images come from ``synth`` with ``TRAIN_SEED``; validation and the
data set that ``edgekit sample`` writes use ``SAMPLE_SEED``, so the AUC printed at
the end is measured on images the model never saw.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekit.sample import IMAGE_SIZE, MEAN, SAMPLE_SEED, STD, TRAIN_SEED
from edgekit.sample.model import SampleDetector
from edgekit.sample.synth import make_batch


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return (x - MEAN) / STD


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def train(out: Path, n_train: int, n_val: int, epochs: int, batch: int) -> float:
    """Train and save the state dict to ``out``; returns the validation AUC."""
    torch.manual_seed(0)
    torch.set_num_threads(2)
    t0 = time.time()
    x_train_u8, y_train = make_batch(TRAIN_SEED, 0, n_train, IMAGE_SIZE)
    x_val_u8, y_val = make_batch(SAMPLE_SEED, 0, n_val, IMAGE_SIZE)
    print(f"data: {n_train} train / {n_val} val in {time.time() - t0:.1f}s", flush=True)
    x_train, x_val = _to_tensor(x_train_u8), _to_tensor(x_val_u8)
    t_train = torch.from_numpy(y_train).float()

    model = SampleDetector()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = epochs * (n_train // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    loss_fn = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(0)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n_train, generator=gen)
        total = 0.0
        for k in range(n_train // batch):
            idx = order[k * batch : (k + 1) * batch]
            xb = x_train[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = loss_fn(model(xb).squeeze(1), t_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        model.eval()
        with torch.no_grad():
            val_scores = torch.cat([model(x_val[i : i + 256]) for i in range(0, n_val, 256)]).squeeze(1)
        auc = _auc(val_scores.numpy(), y_val)
        print(
            f"epoch {epoch + 1}/{epochs} loss {total / (n_train // batch):.4f} val AUC {auc:.4f} "
            f"({time.time() - t0:.0f}s)",
            flush=True,
        )
    # Shipped as float16 (half the package size); the reference model is the rounded one.
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
        val_scores = torch.cat([model(x_val[i : i + 256]) for i in range(0, n_val, 256)]).squeeze(1)
    auc = _auc(val_scores.numpy(), y_val)
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save(half, out)
    return auc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("weights.pt"))
    parser.add_argument("--train", type=int, default=5000)
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    auc = train(args.out, args.train, args.val, args.epochs, args.batch)
    print(f"saved {args.out} (validation AUC {auc:.4f})")


if __name__ == "__main__":
    main()
