"""Linear probes on frozen features: can a linear model read the ground truth out of an encoder's features?

Features are standardised on the training episodes; classes are fitted by multinomial logistic regression
(L-BFGS), continuous targets by ridge regression, each with its L2 strength chosen on validation episodes carved
out of the training ones (as scikit-learn's RidgeCV / LogisticRegressionCV would: with thousands of features and
a few thousand frames an unregularised probe overfits and scores below a constant). Scores are on held-out
episodes (every fifth episode id): accuracy for classes, R^2 for continuous targets.
"""

from __future__ import annotations

import numpy as np
import torch

from drive.perception.truth import TARGETS

HELD_OUT_EVERY = 5
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)  # per-sample L2 strengths tried on the validation episodes


def held_out(episode: np.ndarray) -> np.ndarray:
    return episode % HELD_OUT_EVERY == HELD_OUT_EVERY - 1


def validation(episode: np.ndarray) -> np.ndarray:
    """The training episodes set aside to choose the L2 strength (disjoint from ``held_out``)."""
    return episode % HELD_OUT_EVERY == HELD_OUT_EVERY - 2


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


def fit_and_score(kind: str, train_x: torch.Tensor, train_y: torch.Tensor, l2: float, test_x, test_y) -> float:
    """Fit one probe on the training rows, score it on the test rows."""
    if kind == "class":
        model = fit_classifier(train_x, train_y, l2)
        with torch.no_grad():
            predicted = model(test_x.double()).argmax(1)
        return float((predicted == test_y).double().mean())
    w = fit_ridge(train_x, train_y, l2)
    predicted = torch.cat([test_x.double(), torch.ones(len(test_x), 1, dtype=torch.float64)], 1) @ w
    return r2(predicted, test_y.double())


def probe_scores(feats: torch.Tensor, truth: dict[str, np.ndarray], test: np.ndarray) -> dict[str, float]:
    """Score per target in ``truth``: accuracy (classes) or R^2 (continuous), on the ``test`` rows; the L2
    strength is the one scoring best on the ``validation`` episodes when fitted on the other training rows.
    Targets ``truth`` lacks (an older frame store's) are skipped, not an error: ``missing_targets`` names them."""
    test_mask = torch.as_tensor(test)
    valid_mask = torch.as_tensor(validation(truth["episode"])) & ~test_mask
    train_mask = ~test_mask
    mean, std = feats[train_mask].mean(0), feats[train_mask].std(0).clamp(min=1e-6)
    x = (feats - mean) / std
    fit_mask = train_mask & ~valid_mask
    scores = {}
    for name, kind in TARGETS.items():
        if name not in truth:
            continue
        y = torch.as_tensor(truth[name])
        l2 = max(L2_GRID, key=lambda a: fit_and_score(kind, x[fit_mask], y[fit_mask], a, x[valid_mask], y[valid_mask]))
        scores[name] = fit_and_score(kind, x[train_mask], y[train_mask], l2, x[test_mask], y[test_mask])
    return scores


def missing_targets(truth: dict[str, np.ndarray]) -> list[str]:
    """The probe targets a frame store does not hold (collected before they were recorded, or on a backend
    without them)."""
    return [name for name in TARGETS if name not in truth]


def format_probe_table(results: dict[str, dict[str, float]]) -> str:
    """Rows: targets (with their metric) that any encoder was scored on; columns: encoders; a last line names the
    targets none was scored on."""
    names = list(results)
    width = max(12, *(len(n) + 2 for n in names))
    lines = [f"{'target':<22}{'metric':<10}" + "".join(f"{n:>{width}}" for n in names)]
    scored = [t for t in TARGETS if any(t in scores for scores in results.values())]
    for target in scored:
        metric = "accuracy" if TARGETS[target] == "class" else "R^2"
        cells = (results[n].get(target, float("nan")) for n in names)
        lines.append(f"{target:<22}{metric:<10}" + "".join(f"{value:>{width}.3f}" for value in cells))
    skipped = [t for t in TARGETS if t not in scored]
    if skipped:
        lines.append(f"not in this frame store: {', '.join(skipped)}")
    return "\n".join(lines)
