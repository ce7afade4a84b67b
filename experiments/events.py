"""TensorBoard event files without torch: scalars, histograms, text, images, meshes, custom-scalar layouts and the
hparams table's sessions, written with TensorBoard's own file writer and protocol buffers.

torch.utils.tensorboard.SummaryWriter imports torch (3-5 s, in every process that writes): training, the landscape
and the claims write through this instead, so a sweep's workers never import torch for it.
"""
import json
import math
import os
import struct
import sys
import time

import numpy as np
from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.plugins.mesh import metadata as mesh_metadata
from tensorboard.plugins.mesh.plugin_data_pb2 import MeshPluginData
from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData
from tensorboard.summary.writer.event_file_writer import EventFileWriter

HISTOGRAM_BINS = 30
METRIC_PREFIX = "hparams/"   # the scalar tags of the hparams table's metric columns, training and landscape alike


def plugin_metadata(name, content=b""):
    """SummaryMetadata naming the TensorBoard plugin that shows a summary."""
    return SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=name, content=content))


def shape_proto(shape):
    """A TensorShapeProto of shape."""
    return TensorShapeProto(dim=[TensorShapeProto.Dim(size=n) for n in shape])


def string_tensor(value, shape=()):
    """A DT_STRING TensorProto holding one bytes value."""
    return TensorProto(dtype="DT_STRING", string_val=[value], tensor_shape=shape_proto(shape))


def hparams_summary(tag, **content):
    """A Summary holding one piece of the hparams plugin's data (a session's start or end)."""
    data = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **content)
    return Summary(value=[Summary.Value(tag=tag, metadata=plugin_metadata(metadata.PLUGIN_NAME,
                                                                          data.SerializeToString()))])


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
    """One row of TensorBoard's hparams table in writer's run (an EventWriter): the session's hparams, and metrics {name: value} as scalars METRIC_PREFIX + name (non-finite ones left out).

    No experiment tag: the hparams plugin shows the first experiment tag it finds and nothing else, so training
    and landscape runs under one logdir would hide each other's columns; without one it builds the table from
    every session (the union of their hparams) and the sessions' scalar tags.
    """
    for summary in session_summaries(hparams):
        writer.add_summary(summary, step)
    for name, value in metrics.items():
        if math.isfinite(value):
            writer.add_scalar(METRIC_PREFIX + name, value, step)


def png_size(png):
    """(width, height) of a PNG, read from its IHDR chunk."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG image")
    return struct.unpack(">II", png[16:24])


class EventWriter:
    """An event file in logdir, written like torch's SummaryWriter (add_scalar, add_histogram, add_text, add_image,
    add_mesh, add_custom_scalars, flush, close; a context manager; hparams by add_session).

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

    def add_text(self, tag, text, step=0):
        """Markdown text, shown in the text tab under tag."""
        data = TextPluginData(version=0).SerializeToString()
        value = Summary.Value(tag=tag, metadata=plugin_metadata("text", data),
                              tensor=string_tensor(text.encode("utf-8"), shape=(1,)))
        self.add_summary(Summary(value=[value]), step)

    def add_image(self, tag, png, step=0):
        """An image given as PNG bytes (RGBA, as matplotlib writes them)."""
        width, height = png_size(png)
        image = Summary.Image(height=height, width=width, colorspace=4, encoded_image_string=png)
        self.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)

    def add_mesh(self, tag, vertices, colors, faces, config_dict, step=0):
        """A triangle mesh for the mesh plugin's 3-D view: vertices (1, V, 3), colors (1, V, 3) in 0-255, faces
        (1, F, 3) vertex indices, config_dict its three.js camera, lights and material."""
        parts = ((vertices, MeshPluginData.VERTEX), (faces, MeshPluginData.FACE), (colors, MeshPluginData.COLOR))
        components = mesh_metadata.get_components_bitmask([kind for _, kind in parts])
        config = json.dumps(config_dict, sort_keys=True)
        values = []
        for array, kind in parts:
            array = np.asarray(array, "<f4")                                         # (1, n, 3)
            meta = mesh_metadata.create_summary_metadata(tag, None, kind, components, array.shape, json_config=config)
            tensor = TensorProto(dtype="DT_FLOAT", tensor_content=array.tobytes(), tensor_shape=shape_proto(array.shape))
            values.append(Summary.Value(tag=mesh_metadata.get_instance_name(tag, kind), tensor=tensor, metadata=meta))
        self.add_summary(Summary(value=values), step)

    def add_custom_scalars(self, layout):
        """The custom-scalars tab's layout: {category: {chart title: [regexes of the tags it draws as lines]}}."""
        categories = [layout_pb2.Category(title=category, chart=[
            layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(tag=tags))
            for title, tags in charts.items()]) for category, charts in layout.items()]
        tensor = string_tensor(layout_pb2.Layout(category=categories).SerializeToString())
        value = Summary.Value(tag="custom_scalars__config__", tensor=tensor, metadata=plugin_metadata("custom_scalars"))
        self.add_summary(Summary(value=[value]), 0)

    def flush(self):
        self.file.flush()

    def close(self):
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def serve_command(logdir):
    """The command that serves logdir in TensorBoard: `make tensorboard` in a checkout, or the tensorboard
    installed beside this Python (bare `tensorboard` is not on PATH in a venv that is not activated)."""
    exe = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    relative = os.path.relpath(exe)
    return f"make tensorboard LOGDIR={logdir}   (or {exe if relative.startswith('..') else relative} --logdir {logdir})"
