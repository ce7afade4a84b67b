"""TensorBoard event files without torch: the scalars, histograms and hparams the training loop writes.

torch.utils.tensorboard.SummaryWriter imports torch (5 s on a busy machine); a manual-only run and the claims
workers write through this instead, with TensorBoard's own file writer and protocol buffers.
"""
import numpy as np
from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

HISTOGRAM_BINS = 30


def hparams_summary(tag, **content):
    """A Summary holding one piece of the hparams plugin's data (experiment, session start or end)."""
    data = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **content)
    plugin = SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME, content=data.SerializeToString())
    return Summary(value=[Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))])


class EventWriter:
    """An event file in logdir, written like SummaryWriter (add_scalar, add_histogram, add_hparams, flush, close).

    purge_step: TensorBoard drops the events at and after this step that earlier files hold (a resumed run).
    """

    def __init__(self, logdir, purge_step=None):
        self.file = EventFileWriter(logdir)
        if purge_step is not None:
            self.file.add_event(Event(step=purge_step, session_log=SessionLog(status=SessionLog.START)))

    def add_summary(self, summary, step):
        """Write one Summary at step."""
        self.file.add_event(Event(summary=summary, step=step))

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

    def add_hparams(self, hparams, metrics, step):
        """One row of TensorBoard's hparams table: hparams (str or number values) and metrics {tag: value}."""
        infos, start = [], plugin_data_pb2.SessionStartInfo()
        for name, value in hparams.items():
            if isinstance(value, str):
                start.hparams[name].string_value = value
                kind = "DATA_TYPE_STRING"
            else:
                start.hparams[name].number_value = value
                kind = "DATA_TYPE_FLOAT64"
            infos.append(api_pb2.HParamInfo(name=name, type=api_pb2.DataType.Value(kind)))
        experiment = api_pb2.Experiment(hparam_infos=infos,
                                        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=t)) for t in metrics])
        end = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value("STATUS_SUCCESS"))
        self.add_summary(hparams_summary(metadata.EXPERIMENT_TAG, experiment=experiment), step)
        self.add_summary(hparams_summary(metadata.SESSION_START_INFO_TAG, session_start_info=start), step)
        self.add_summary(hparams_summary(metadata.SESSION_END_INFO_TAG, session_end_info=end), step)
        for tag, value in metrics.items():
            self.add_scalar(tag, value, step)

    def flush(self):
        self.file.flush()

    def close(self):
        self.file.close()
