"""Linear probes on frozen features: can a linear model read the ground truth out of an encoder's features?

Features are standardised on the training episodes; classes are fitted by multinomial logistic regression
(L-BFGS, small L2), continuous targets by ridge regression. Scores are on held-out episodes (every fifth
episode id): accuracy for classes, R^2 for continuous targets.
"""

from __future__ import annotations

import numpy as np
import torch

from drive.perception.truth import TARGETS

HELD_OUT_EVERY = 5


def held_out(episode: np.ndarray) -> np.ndarray:
    return episode % HELD_OUT_EVERY == HELD_OUT_EVERY - 1


@torch.no_grad()
def features(encoder: torch.nn.Module, frames: np.ndarray, device: str = "cpu", batch: int = 512) -> torch.Tensor:
    encoder = encoder.to(device).eval()
    out = [
        encoder(torch.as_tensor(frames[i : i + batch], device=device)).float().cpu()
        for i in range(0, len(frames), batch)
    ]
    return torch.cat(out)


def fit_classifier(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-3, steps: int = 100) -> torch.nn.Linear:
    classes = int(y.max()) + 1
    model = torch.nn.Linear(x.shape[1], max(classes, 2)).double()
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=steps, line_search_fn="strong_wolfe")
    x, y = x.double(), y.long()

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y) + l2 * model.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return model


def fit_ridge(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-3) -> torch.Tensor:
    """Weights (D + 1,) of y ~ [x, 1] w."""
    x1 = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], 1)
    eye = torch.eye(x1.shape[1], dtype=torch.float64) * l2 * len(x)
    eye[-1, -1] = 0
    return torch.linalg.solve(x1.T @ x1 + eye, x1.T @ y.double())


def r2(prediction: torch.Tensor, target: torch.Tensor) -> float:
    residual = (target - prediction).pow(2).sum()
    total = (target - target.mean()).pow(2).sum()
    return float(1 - residual / total) if total > 0 else float("nan")


def probe_scores(feats: torch.Tensor, truth: dict[str, np.ndarray], test: np.ndarray) -> dict[str, float]:
    """Score per target: accuracy (classes) or R^2 (continuous), on the ``test`` rows."""
    test_mask = torch.as_tensor(test)
    train_x, test_x = feats[~test_mask], feats[test_mask]
    mean, std = train_x.mean(0), train_x.std(0).clamp(min=1e-6)
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    scores = {}
    for name, kind in TARGETS.items():
        y = torch.as_tensor(truth[name])
        if kind == "class":
            model = fit_classifier(train_x, y[~test_mask])
            with torch.no_grad():
                predicted = model(test_x.double()).argmax(1)
            scores[name] = float((predicted == y[test_mask]).double().mean())
        else:
            w = fit_ridge(train_x, y[~test_mask])
            predicted = torch.cat([test_x.double(), torch.ones(len(test_x), 1, dtype=torch.float64)], 1) @ w
            scores[name] = r2(predicted, y[test_mask].double())
    return scores


def format_probe_table(results: dict[str, dict[str, float]]) -> str:
    """Rows: targets (with their metric); columns: encoders."""
    names = list(results)
    width = max(12, *(len(n) + 2 for n in names))
    lines = [f"{'target':<22}{'metric':<10}" + "".join(f"{n:>{width}}" for n in names)]
    for target, kind in TARGETS.items():
        metric = "accuracy" if kind == "class" else "R^2"
        lines.append(f"{target:<22}{metric:<10}" + "".join(f"{results[n][target]:>{width}.3f}" for n in names))
    return "\n".join(lines)
