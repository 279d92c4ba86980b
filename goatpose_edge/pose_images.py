"""The poses of the persons in still images, one result per image: ``goatpose pose``'s library function.

    options = PoseOptions("export/goatpose-bl_256x192.onnx", detector="whole", flip=True)
    for result in pose_images(["a.jpg", "b.jpg"], options):
        print(result.to_json())  # {"image": "a.jpg", "persons": [{"box", "score", "box_score", "keypoints"}]}

Every image is decoded before the detector and the pose model are loaded, so an unreadable image fails at once, in
one line (``imagefile.ImageError``), without the cost of a model load.
"""

import json
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from goatpose_edge.imagefile import read_image
from goatpose_edge.pipeline import Person, TopDownPoseEstimator


@dataclass(frozen=True)
class PoseOptions:
    """What ``pose_images`` opens and how it estimates (the options of ``goatpose pose``)."""

    pose: str  # pose artefact: .onnx, .engine or .pth (``runtime.load_runner``)
    detector: str = "hog"  # person detector: hog, hog:W, whole or a detector file (``detection.make_detector``)
    model: Optional[str] = None  # variant name for a .pth checkpoint that does not record it (ignored otherwise)
    flip: bool = False  # flip test: average in the mirrored crops
    post_process: Optional[str] = "quarter"  # heatmap decoding: "quarter", "dark" or "none" (``HeatmapCodec``)
    log: Optional[Callable[[str], None]] = None  # gets the one-line warning when the weights are random


@dataclass
class ImagePoses:
    """The persons found in one image."""

    image: str  # the image's path, as given
    persons: List[Person]  # best first; keypoints [K, 3] (x, y, score) in the image's pixels
    shape: Optional[Tuple[int, ...]] = None  # the image's [H, W, 3]: keypoints are clamped to it, as video does
    frame: Optional[np.ndarray] = None  # the decoded image (BGR), with ``keep_frames``
    contract: Optional[object] = None  # the pose model's contract (skeleton, weights), with ``keep_frames``

    def to_dict(self) -> dict:
        return {"image": self.image, "persons": [person.to_dict(clamp_to=self.shape) for person in self.persons]}

    def to_json(self) -> str:
        """One JSON line (no newline), as ``goatpose pose`` prints it."""
        return json.dumps(self.to_dict())


def pose_images(image_paths: Sequence[str], estimator: Union[PoseOptions, TopDownPoseEstimator],
                keep_frames: bool = False) -> Iterator[ImagePoses]:
    """The poses in each image, in the order given: an iterator of ``ImagePoses``.

    ``estimator`` is an estimator the caller owns, or ``PoseOptions``: then the detector and the pose runner are
    opened when the first result is asked for and released when the iterator is exhausted or closed. Every image is
    read here, before anything else: an unreadable one raises ``imagefile.ImageError`` from this call."""
    frames = [(path, read_image(path)) for path in image_paths]  # [(path, BGR uint8 [H, W, 3])]
    if isinstance(estimator, PoseOptions):
        return _pose_with(frames, estimator, keep_frames)
    return (ImagePoses(path, estimator(frame), frame.shape, frame if keep_frames else None,
                       estimator.contract if keep_frames else None) for path, frame in frames)


def _pose_with(frames: List[Tuple[str, np.ndarray]], options: PoseOptions, keep_frames: bool) -> Iterator[ImagePoses]:
    from goatpose_edge.detection import make_detector
    from goatpose_edge.runtime import load_runner

    with make_detector(options.detector) as detector, load_runner(options.pose, model_name=options.model) as runner:
        estimator = TopDownPoseEstimator(detector, runner, flip=options.flip, post_process=options.post_process)
        warning = estimator.contract.weights_warning()
        if warning and options.log is not None:
            options.log(warning)
        for path, frame in frames:
            yield ImagePoses(path, estimator(frame), frame.shape, frame if keep_frames else None,
                             estimator.contract if keep_frames else None)
