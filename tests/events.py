"""The one TensorBoard reader the tests use: an event directory loaded in full."""
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def load_events(directory):
    """An EventAccumulator over directory, reloaded, keeping every scalar, histogram, tensor and image."""
    acc = EventAccumulator(str(directory), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0, "images": 0})
    acc.Reload()
    return acc
