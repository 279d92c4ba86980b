"""The top-down pipeline end to end: real crops and decoding through a runner that really looks at the pixels."""

import cv2
import numpy as np
import pytest

from goatpose_edge.detection import Detections, WholeFrame
from goatpose_edge.pipeline import FrameError, TopDownPoseEstimator, as_bgr
from goatpose_edge.runtime import load_runner
from goatpose_edge.runtime.base import Runner
from goatpose_edge.variants import VARIANTS


class BrightSpotRunner(Runner):
    """Heatmaps = 4x4-pooled brightness of the crop for every keypoint: the decoded keypoints find the bright spot."""

    backend = "bright-spot"

    def __init__(self, static_batch=None, flip_merged=False):
        super().__init__("bright-spot")
        contract = VARIANTS["goatpose-bl"].contract
        self.contract = contract if not flip_merged else type(contract)(**dict(contract.to_dict(), flip_merged=True))
        self.max_batch = static_batch
        self.min_batch = static_batch or 1
        self.calls = []

    def _activate(self):
        pass

    def _deactivate(self):
        pass

    def _infer(self, batch):
        self.calls.append(len(batch))
        brightness = batch.mean(axis=1)  # [N, H, W]
        n, h, w = brightness.shape
        pooled = brightness.reshape(n, h // 4, 4, w // 4, 4).mean(axis=(2, 4))  # [N, h, w]
        pooled = pooled - pooled.min(axis=(1, 2), keepdims=True)
        return np.repeat(pooled[:, None], 17, axis=1).astype(np.float32)


def _frame_with_spots(spots, shape=(480, 640)):
    frame = np.zeros(shape + (3,), np.uint8)
    for x, y in spots:
        cv2.circle(frame, (int(x), int(y)), 6, (255, 255, 255), -1)
    return frame


class Boxes:
    def __init__(self, boxes, scores=None):
        self.detections = Detections(np.asarray(boxes, np.float32),
                                     np.asarray(scores if scores is not None else [0.9] * len(boxes), np.float32))

    def detect(self, frame):
        return self.detections


@pytest.mark.parametrize("flip", [False, True])
def test_keypoints_land_on_the_spot_in_frame_pixels(flip):
    spots = [(200, 150), (480, 330)]
    boxes = [[150, 60, 100, 200], [430, 250, 110, 160]]
    with BrightSpotRunner() as runner:
        persons = TopDownPoseEstimator(Boxes(boxes), runner, flip=flip, oks_nms_threshold=None)(
            _frame_with_spots(spots))
    assert len(persons) == 2
    for person, spot in zip(persons, spots):
        assert person.keypoints.shape == (17, 3)
        # one heatmap pixel is ~5 frame pixels for these boxes: within one heatmap pixel
        assert np.abs(person.keypoints[:, :2] - spot).max() < 6
    assert runner.calls == ([2, 2] if flip else [2])


def test_static_batch_artefacts_get_padded_chunks():
    boxes = [[50 + 60 * i, 100, 50, 120] for i in range(5)]
    with BrightSpotRunner(static_batch=2) as runner:
        persons = TopDownPoseEstimator(Boxes(boxes), runner, oks_nms_threshold=None)(np.zeros((300, 400, 3), np.uint8))
    assert len(persons) == 5 and runner.calls == [2, 2, 2]


def test_dynamic_batch_artefacts_run_in_chunks_of_eight():
    boxes = [[10 + 18 * i, 100, 16, 40] for i in range(20)]
    with BrightSpotRunner() as runner:
        persons = TopDownPoseEstimator(Boxes(boxes), runner, oks_nms_threshold=None)(np.zeros((300, 400, 3), np.uint8))
    assert len(persons) == 20 and runner.calls == [8, 8, 4]


def test_profiles_with_a_smallest_batch_above_one_get_padded():
    boxes = [[10 + 18 * i, 100, 16, 40] for i in range(5)]
    frame = np.zeros((300, 400, 3), np.uint8)
    with BrightSpotRunner() as runner:  # a TensorRT-like profile 4..8
        runner.min_batch, runner.max_batch = 4, 8
        assert len(TopDownPoseEstimator(Boxes(boxes[:1]), runner, oks_nms_threshold=None)(frame)) == 1
        assert len(TopDownPoseEstimator(Boxes(boxes), runner, oks_nms_threshold=None, max_batch=3)(frame)) == 5
    assert runner.calls == [4, 4, 4]  # 1 person padded to 4; 5 persons as 3 + 2, each padded to 4
    with BrightSpotRunner(static_batch=8) as runner:  # a per-crop loop over a static batch-8 artefact still runs
        persons = TopDownPoseEstimator(Boxes(boxes[:2]), runner, oks_nms_threshold=None, max_batch=1)(frame)
    assert len(persons) == 2 and runner.calls == [8, 8]


class SplitStageRunner(BrightSpotRunner):
    """Reports a device split of each call, as the TensorRT runner does with CUDA events."""

    def _infer(self, batch):
        self.last_stages = {"copy_in": 0.001, "infer": 0.004, "copy_out": 0.002}
        return super()._infer(batch)


def _timed_stages(runner_type):
    from goatpose_edge.timing import StageTimer

    timer = StageTimer()
    with runner_type() as runner:
        TopDownPoseEstimator(Boxes([[150, 60, 100, 200], [430, 250, 110, 160]]), runner, flip=True, timer=timer)(
            _frame_with_spots([(200, 150)]))
    return timer.samples


def test_stage_timer_gets_every_stage():
    samples = _timed_stages(BrightSpotRunner)
    assert list(samples) == ["detect", "preprocess", "infer", "postprocess"]
    assert len(samples["infer"]) == 2  # the plain and the mirrored batch


def test_stage_timer_gets_a_runner_s_own_stages():
    samples = _timed_stages(SplitStageRunner)
    assert list(samples) == ["detect", "preprocess", "copy_in", "infer", "copy_out", "postprocess"]
    assert len(samples["infer"]) == 2
    assert samples["copy_in"] == [0.001, 0.001] and samples["copy_out"] == [0.002, 0.002]


def test_flip_is_not_done_twice_for_a_flip_merged_artefact():
    with BrightSpotRunner(flip_merged=True) as runner:
        estimator = TopDownPoseEstimator(Boxes([[10, 10, 50, 100]]), runner, flip=True)
        estimator(np.zeros((200, 200, 3), np.uint8))
    assert not estimator.flip and runner.calls == [1]


def test_odd_frames_and_boxes():
    boxes = [[10, 10, 50, 100], [0, 0, 0, 10], [5, 5, -3, 10], [np.nan, 0, 10, 10], [500, 500, 30, 30],
             [-20, -20, 40, 60]]
    with BrightSpotRunner() as runner:
        estimator = TopDownPoseEstimator(Boxes(boxes), runner, oks_nms_threshold=None)
        gray = np.zeros((200, 200), np.uint8)
        persons = estimator(gray)  # zero, negative, NaN and outside boxes dropped; the partly outside one kept
        assert len(persons) == 2 and np.isfinite(persons[1].keypoints).all()
        assert len(estimator(np.zeros((200, 200, 4), np.uint8))) == 2
        assert estimator(np.zeros((0, 0, 3), np.uint8)) == []
        with pytest.raises(FrameError):
            estimator(None)
        with pytest.raises(FrameError):
            estimator(np.zeros((10, 10, 3), np.float32))
    assert as_bgr(np.zeros((4, 5, 1), np.uint8)).shape == (4, 5, 3)


def test_oks_nms_removes_duplicate_persons():
    boxes = [[150, 60, 100, 200], [152, 61, 100, 200]]
    with BrightSpotRunner() as runner:
        persons = TopDownPoseEstimator(Boxes(boxes, [0.9, 0.6]), runner)(_frame_with_spots([(200, 150)]))
    assert len(persons) == 1 and persons[0].box_score == pytest.approx(0.9)


def test_real_onnx_model_on_a_real_photo(exports, coco_persons):
    path, box = coco_persons[0]
    frame = cv2.imread(path)
    with load_runner(exports.onnx("goatpose-bl").path) as runner:
        persons = TopDownPoseEstimator(Boxes([box]), runner, flip=True)(frame)
        whole = TopDownPoseEstimator(WholeFrame(), runner)(frame)
    assert len(persons) == 1 and len(whole) == 1
    person = persons[0].to_dict()
    assert len(person["keypoints"]) == 17 and all(np.isfinite(v) for kp in person["keypoints"] for v in kp)
