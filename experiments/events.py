"""TensorBoard event files without torch: the scalars, histograms and hparams the training loop writes; the
hparams table's sessions for any writer.

torch.utils.tensorboard.SummaryWriter imports torch (5 s on a busy machine); a manual-only run and the claims
workers write through this instead, with TensorBoard's own file writer and protocol buffers.
"""
import math
import os
import sys
import time

import numpy as np
from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

HISTOGRAM_BINS = 30
METRIC_PREFIX = "hparams/"   # the scalar tags of the hparams table's metric columns, training and landscape alike


def hparams_summary(tag, **content):
    """A Summary holding one piece of the hparams plugin's data (a session's start or end)."""
    data = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **content)
    plugin = SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME, content=data.SerializeToString())
    return Summary(value=[Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))])


def session_summaries(hparams):
    """The hparams plugin's session start (hparams: str or number values) and end (success) of one run."""
    start = plugin_data_pb2.SessionStartInfo()
    for name, value in hparams.items():
        if isinstance(value, str):
            start.hparams[name].string_value = value
        else:
            start.hparams[name].number_value = value
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value("STATUS_SUCCESS"))
    return [hparams_summary(metadata.SESSION_START_INFO_TAG, session_start_info=start),
            hparams_summary(metadata.SESSION_END_INFO_TAG, session_end_info=end)]


def add_session(writer, hparams, metrics, step):
    """One row of TensorBoard's hparams table in writer's run (an EventWriter or torch's SummaryWriter): the
    session's hparams, and metrics {name: value} as scalars METRIC_PREFIX + name (non-finite ones left out).

    No experiment tag: the hparams plugin shows the first experiment tag it finds and nothing else, so training
    and landscape runs under one logdir would hide each other's columns; without one it builds the table from
    every session (the union of their hparams) and the sessions' scalar tags.
    """
    file = writer.file if isinstance(writer, EventWriter) else writer._get_file_writer()   # no public add_summary
    for summary in session_summaries(hparams):
        file.add_event(Event(summary=summary, step=step, wall_time=time.time()))
    for name, value in metrics.items():
        if math.isfinite(value):
            writer.add_scalar(METRIC_PREFIX + name, value, step)


class EventWriter:
    """An event file in logdir, written like SummaryWriter (add_scalar, add_histogram, flush, close; hparams by
    add_session).

    purge_step: TensorBoard drops the events at and after this step that earlier files hold (a resumed run).
    """

    def __init__(self, logdir, purge_step=None):
        self.file = EventFileWriter(logdir)
        if purge_step is not None:
            self.file.add_event(Event(step=purge_step, session_log=SessionLog(status=SessionLog.START)))

    def add_summary(self, summary, step):
        """Write one Summary at step."""
        self.file.add_event(Event(summary=summary, step=step, wall_time=time.time()))

    def add_scalar(self, tag, value, step):
        """One point of the scalar series tag."""
        self.add_summary(Summary(value=[Summary.Value(tag=tag, simple_value=float(value))]), step)

    def add_histogram(self, tag, values, step):
        """A histogram of values' entries in HISTOGRAM_BINS equal bins."""
        values = np.asarray(values, np.float64).ravel()                                  # (n,)
        counts, limits = np.histogram(values, HISTOGRAM_BINS)
        histogram = HistogramProto(min=values.min(), max=values.max(), num=len(values), sum=values.sum(),
                                   sum_squares=values.dot(values), bucket_limit=[limits[0], *limits[1:]],
                                   bucket=[0, *counts.tolist()])   # TensorBoard reads right edges: an empty first bin
        self.add_summary(Summary(value=[Summary.Value(tag=tag, histo=histogram)]), step)

    def flush(self):
        self.file.flush()

    def close(self):
        self.file.close()


def serve_command(logdir):
    """The command that serves logdir in TensorBoard: `make tensorboard` in a checkout, or the tensorboard
    installed beside this Python (bare `tensorboard` is not on PATH in a venv that is not activated)."""
    exe = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    relative = os.path.relpath(exe)
    return f"make tensorboard LOGDIR={logdir}   (or {exe if relative.startswith('..') else relative} --logdir {logdir})"
