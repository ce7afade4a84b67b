"""Progress reported in lumps: fractions of work collected and handed to a sink (a bar's update, a queue's put)."""
import time


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
