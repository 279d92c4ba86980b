"""Overlay of poses on a BGR frame: per-person colour, the contract's skeleton, the box labelled with the track id
and the detector's score, and a HUD (stream, fps, person count, a warning such as random weights) that nothing
overdraws.

    draw_persons(frame, persons, contract.skeleton, fps=31.2, ids=ids, label="stream 1")   # in place; returns it

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
                 min_score: float = 0.3, ids: Optional[Sequence[int]] = None, boxes: bool = True,
                 label: Optional[str] = None, warning: Optional[str] = None) -> np.ndarray:
    """Draw ``persons`` (``pipeline.Person``: box (x, y, w, h), score, box_score, keypoints [K, 3]) on ``frame``
    [H, W, 3] uint8 in place; ``skeleton`` is the contract's [(i, j)] limb list; ``ids`` (track ids) choose colours
    and label the boxes ("#id" and the detector's score). The HUD (top left: ``label``, e.g. the stream, the fps and
    the person count; ``warning`` below it in red, e.g. random weights) is drawn last, on a dark band, so nothing
    overdraws it."""
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
            text = "{}{:.2f}".format("#{} ".format(ident) if ids is not None else "",
                                     float(getattr(person, "box_score", person.score)))
            cv2.putText(frame, text, (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, colour,
                        thickness, cv2.LINE_AA)
    lines = []
    if label is not None or fps is not None:
        count = len(persons)
        parts = ([label] if label else []) + (["{:.1f} fps".format(fps)] if fps is not None else []) + [
            "{} person{}".format(count, "" if count == 1 else "s")]
        lines.append(("  ".join(parts), (255, 255, 255)))
    if warning:
        lines.append((warning, (60, 60, 255)))
    _hud(frame, lines, thickness)
    return frame


def _hud(frame: np.ndarray, lines, thickness: int) -> None:
    """Text lines on a dark band at the top left, drawn after everything else."""
    if not lines:
        return
    scale, pad = 0.6 * thickness, 6 * thickness
    sizes = [cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0] for text, _ in lines]
    line_height = max(h for _, h in sizes) + pad
    band_w = min(frame.shape[1], max(w for w, _ in sizes) + 2 * pad)
    band_h = min(frame.shape[0], line_height * len(lines) + pad)
    frame[:band_h, :band_w] = (frame[:band_h, :band_w] * 0.35).astype(frame.dtype)
    for index, (text, colour) in enumerate(lines):
        cv2.putText(frame, text, (pad, line_height * (index + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour,
                    thickness, cv2.LINE_AA)
