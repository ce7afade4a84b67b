"""A real browser (headless Chromium, skipped without one) renders TensorBoard's HParams table for a logdir holding
training and landscape runs: both kinds of columns and rows appear, as a newcomer would see them."""
import pytest

from tests import browser
from tests.test_tensorboard_client import OTHER, RUN, RUNS, TRAINING, serving, write_logdir

pytestmark = [pytest.mark.full,
              pytest.mark.skipif(browser.executable() is None, reason="no chromium on PATH")]
SECONDS = 90   # for the page to render the table

# what the table must show: training and landscape hparams, metrics of both, a row of each
EXPECTED = ["lr", "optimizer", "init", "hparams/test_accuracy", "hparams/worst_barrier", "hparams/sharpness",
            TRAINING, f"landscape/{RUN}", "torch_default", "kaiming_normal", "xavier_uniform"]


def test_the_hparams_table_renders_training_and_landscape_columns(tmp_path):
    write_logdir(str(tmp_path))
    with serving(str(tmp_path), RUNS) as base, browser.Browser() as page:
        page.open(f"{base}/#hparams")
        text = page.wait_for_text(EXPECTED, SECONDS)
        missing = [needle for needle in EXPECTED if needle not in text]
        assert not missing, f"not rendered: {missing}; the page shows: {text[:3000]}"
        assert f"landscape/{OTHER}" in text or "landscape/xavie" in text   # the trial ID column may cut it
        page.screenshot(str(tmp_path / "hparams.png"))
        assert (tmp_path / "hparams.png").stat().st_size > 10_000
