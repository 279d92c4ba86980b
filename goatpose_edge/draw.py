"""Overlay of poses on a BGR frame: per-person colour, the contract's skeleton, box and score, an fps line.

    draw_persons(frame, persons, contract.skeleton, fps=31.2)    # draws in place, returns the frame

Keypoints scoring below ``min_score`` (and limbs touching them) are not drawn. Pure OpenCV, device side.
"""

from typing import Optional, Sequence

import cv2
import numpy as np

#: distinct BGR colours, one per person (cycled)
PALETTE = [(255, 128, 0), (0, 200, 255), (80, 220, 60), (230, 60, 230), (60, 60, 255), (255, 255, 0),
           (0, 128, 255), (180, 105, 255), (128, 255, 128), (255, 80, 80)]


def person_colour(index: int):
    return PALETTE[index % len(PALETTE)]


def draw_persons(frame: np.ndarray, persons: Sequence, skeleton: Sequence, fps: Optional[float] = None,
                 min_score: float = 0.3, ids: Optional[Sequence[int]] = None, boxes: bool = True) -> np.ndarray:
    """Draw ``persons`` (``pipeline.Person``: box (x, y, w, h), score, keypoints [K, 3]) on ``frame`` [H, W, 3] uint8
    in place; ``skeleton`` is the contract's [(i, j)] limb list; ``ids`` (track ids) choose colours and labels."""
    height, width = frame.shape[:2]
    thickness = max(1, int(round(min(height, width) / 360)))
    for n, person in enumerate(persons):
        ident = ids[n] if ids is not None else n
        colour = person_colour(ident)
        points = person.keypoints
        visible = (points[:, 2] >= min_score) & np.isfinite(points[:, :2]).all(axis=1)
        xy = np.round(np.where(np.isfinite(points[:, :2]), points[:, :2], 0)).astype(np.int64)
        xy = np.clip(xy, -32768, 32767)  # OpenCV's drawing takes int coordinates; far-off points are clipped
        for i, j in skeleton:
            if visible[i] and visible[j]:
                cv2.line(frame, (int(xy[i, 0]), int(xy[i, 1])), (int(xy[j, 0]), int(xy[j, 1])), colour, thickness + 1,
                         cv2.LINE_AA)
        for k in np.flatnonzero(visible):
            cv2.circle(frame, (int(xy[k, 0]), int(xy[k, 1])), thickness + 2, colour, -1, cv2.LINE_AA)
        if boxes:
            x, y, w, h = [int(round(float(v))) for v in np.clip(person.box, -32768, 32767)]
            cv2.rectangle(frame, (x, y), (x + w, y + h), colour, thickness)
            label = "{}{:.2f}".format("#{} ".format(ident) if ids is not None else "", person.score)
            cv2.putText(frame, label, (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, colour,
                        thickness, cv2.LINE_AA)
    if fps is not None:
        text = "{:.1f} fps  {} persons".format(fps, len(persons))
        cv2.putText(frame, text, (10, 24 * thickness), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * thickness, (0, 0, 0),
                    thickness + 2, cv2.LINE_AA)
        cv2.putText(frame, text, (10, 24 * thickness), cv2.FONT_HERSHEY_SIMPLEX, 0.7 * thickness, (255, 255, 255),
                    thickness, cv2.LINE_AA)
    return frame
