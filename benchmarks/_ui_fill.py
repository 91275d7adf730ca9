"""Fill a store for the ``ui`` case: 1,000 runs, and one of them with a 1,000,000-point series.

Written through the agent's own SQLite backend (``SqliteStore.write``), so the rows
and metric chunks are exactly what training processes leave behind; the runs have
12 params, 8 metrics of 50 points each, a source file and a git commit tag.

    python _ui_fill.py STORE_FOLDER [RUNS] [POINTS]
"""

from __future__ import annotations

import json
import os
import random
import sys
import time

from autologagent._config import store_paths
from autologagent._sqlite_store import SqliteStore
from autologagent._store import Batch


def fill(folder: str, runs: int, points: int) -> dict[str, object]:
    database, artifacts = store_paths(folder)
    store = SqliteStore(database, artifacts)
    rng = random.Random(0)
    start = time.time() - runs * 60
    big_run = ""
    for index in range(runs):
        run_id = f"{index:032x}"
        batch = Batch()
        began = start + index * 60
        batch.run_starts.append((run_id, "bench", f"run-{index}", began, None, "RUNNING"))
        params = {
            "max_depth": rng.choice([3, 5, 10, 20]),
            "n_estimators": rng.choice([50, 100, 200]),
            "learning_rate": rng.choice([0.01, 0.03, 0.1, 0.3]),
            "optimizer": rng.choice(["sgd", "adam", "adamw"]),
            "batch_size": rng.choice([16, 32, 64, 128]),
            "seed": index,
        }
        params.update({f"extra_{k}": rng.random() for k in range(6)})
        batch.params.extend((run_id, key, str(value)) for key, value in params.items())
        batch.tags.append((run_id, "mlflow.source.name", f"/work/train_{index % 7}.py"))
        batch.tags.append((run_id, "mlflow.source.git.commit", f"{rng.getrandbits(160):040x}"))
        for key in ("loss", "val_loss", "accuracy", "val_accuracy", "lr", "f1", "auc", "epoch"):
            for step in range(50):
                batch.metrics.append((run_id, key, rng.random(), step, began + step))
        if index == runs - 1:
            big_run = run_id
            batch.metrics.extend(
                (
                    run_id,
                    "loss_per_step",
                    rng.random() + (100.0 if step == points // 3 else 0),
                    step,
                    began + step / 1000,
                )
                for step in range(points)
            )
        status = "FAILED" if index % 50 == 7 else "FINISHED"
        batch.run_ends.append((run_id, status, began + 50, False))
        store.write(batch)
    store.close()
    return {"store": folder, "runs": runs, "points": points, "big_run": big_run}


if __name__ == "__main__":
    folder = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    points = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    os.makedirs(folder, exist_ok=True)
    print(json.dumps(fill(folder, runs, points)))
