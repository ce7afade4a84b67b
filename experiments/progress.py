"""Progress reported in lumps: fractions of work collected and handed to a sink (a bar's update, a queue's put);
a bar whose clock starts with the work it counts."""
import time

from tqdm import tqdm


class Progress:
    """Collects fractions of work (e.g. grid points) and hands them to sink in lumps (at most every 0.2 s)."""

    def __init__(self, sink=None):
        self.sink, self.pending, self.last = sink, 0.0, time.monotonic()

    def __call__(self, amount):
        self.pending += amount
        if time.monotonic() - self.last > 0.2:
            self.flush()

    def flush(self):
        """Hand what has collected to the sink now."""
        if self.sink and self.pending:
            self.sink(self.pending)
        self.pending, self.last = 0.0, time.monotonic()


class FirstUpdateClock(tqdm):
    """A tqdm bar whose clock starts at its first update: work done before it (the trainings before a landscape's
    first point) would make the first rate tiny and the first ETA hours long."""

    def update(self, n=1):
        if not self.n and n:
            self.reset()
        return super().update(n)
