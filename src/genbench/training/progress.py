"""What training writes while it runs: losses.csv rows and the averaged-loss log window."""

import csv
import time
from pathlib import Path


class Curves:
    """losses.csv in the work folder: one row per logged step, trimmed to the resume point."""

    def __init__(self, path: Path, start_step: int, enabled: bool):
        self.path, self.enabled = path, enabled
        if enabled and path.exists():
            with open(path, newline="") as handle:
                rows = [r for r in csv.reader(handle)]
            keep = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= start_step] if rows else []
            with open(path, "w", newline="") as handle:
                csv.writer(handle).writerows(keep)

    def append(self, row: dict[str, float], step: int) -> None:
        if not self.enabled:
            return
        new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["step", *row])
            writer.writerow([step, *(f"{v:.6g}" for v in row.values())])


class Window:
    """Losses summed between log steps; flush() gives their means and the window's img/s."""

    def __init__(self, batch_size: int):
        self.batch_size, self.sums, self.steps = batch_size, {}, 0
        self.start = time.perf_counter()

    def add(self, values: dict[str, float]) -> None:
        self.sums = {k: self.sums.get(k, 0.0) + v for k, v in values.items()}
        self.steps += 1

    def flush(self) -> dict[str, float]:
        now = time.perf_counter()
        row = {k: v / self.steps for k, v in self.sums.items()}
        row["images_per_second"] = self.steps * self.batch_size / (now - self.start)
        self.sums, self.steps, self.start = {}, 0, now
        return row
