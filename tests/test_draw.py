"""The overlay: boxes labelled with the track id and the detector's score, a HUD with the stream, fps and a person
count in the right number, a warning line, drawn last on a dark band so no box label covers it."""

import numpy as np
import pytest

from goatpose_edge import draw
from goatpose_edge.pipeline import Person


def _person(box, score=0.9, box_score=0.42):
    keypoints = np.array([[box[0] + 5 + i, box[1] + 5 + 2 * i, 0.9] for i in range(17)], np.float32)
    return Person(np.array(box, np.float32), score, box_score, keypoints)


@pytest.fixture
def texts(monkeypatch):
    seen = []
    real = draw.cv2.putText

    def put(image, text, *args, **kwargs):
        seen.append(text)
        return real(image, text, *args, **kwargs)

    monkeypatch.setattr(draw.cv2, "putText", put)
    return seen


@pytest.mark.parametrize("count, words", [(1, "1 person"), (2, "2 persons"), (0, "0 persons")])
def test_the_hud_counts_persons_in_the_right_number(texts, count, words):
    frame = np.zeros((240, 320, 3), np.uint8)
    persons = [_person([100 + 60 * i, 100, 40, 80]) for i in range(count)]
    draw.draw_persons(frame, persons, [(0, 1)], fps=12.5, ids=list(range(count)), label="stream 1")
    assert texts[-1] == "stream 1  12.5 fps  {}".format(words)


def test_box_labels_show_the_id_and_the_detectors_score(texts):
    frame = np.zeros((240, 320, 3), np.uint8)
    draw.draw_persons(frame, [_person([100, 100, 40, 80], score=0.9, box_score=0.42)], [(0, 1)], ids=[7])
    assert texts == ["#7 0.42"]


def test_the_hud_is_drawn_last_on_a_dark_band_with_its_warning(texts):
    frame = np.full((240, 320, 3), 200, np.uint8)
    draw.draw_persons(frame, [_person([0, 0, 120, 60])], [(0, 1)], fps=5.0, ids=[0],
                      warning="RANDOM WEIGHTS: poses are noise")
    assert texts[-2:] == ["5.0 fps  1 person", "RANDOM WEIGHTS: poses are noise"]
    band = frame[:20, 150:200]  # beside the box, under the HUD text: darkened
    assert band.mean() < 120
    assert (frame[:60, :300, 2] > 200).any()  # the warning's red
