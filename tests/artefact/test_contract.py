"""The model contract: the record every artefact carries."""

import json

import pytest

from goatpose_edge.artefact.contract import (COCO_FLIP_PAIRS, COCO_KEYPOINT_NAMES, INPUT_NAME, OUTPUT_NAME,
                                            ModelContract)
from goatpose_edge.errors import ContractError
from goatpose_edge.variants import VARIANTS


def test_coco_layout():
    assert len(COCO_KEYPOINT_NAMES) == 17
    for left, right in COCO_FLIP_PAIRS:
        assert COCO_KEYPOINT_NAMES[left].replace("left", "right") == COCO_KEYPOINT_NAMES[right]


def test_json_round_trip_gives_an_equal_record():
    contract = VARIANTS["goatpose-bh"].contract
    again = ModelContract.from_json(contract.to_json())
    assert again == contract
    assert again.input_size == (384, 288) and again.heatmap_size == (96, 72)
    assert again.aspect_ratio == pytest.approx(0.75)
    assert json.loads(contract.to_json())["flip_pairs"][0] == [1, 2]


def test_tensor_names_are_the_contracts_and_not_stored():
    """Every artefact's graph has the same I/O names, so the contract states them once instead of carrying them: a
    record without them (any artefact written so far) reads back with them, and a reader of these records that
    predates the names still accepts what is written now."""
    contract = VARIANTS["goatpose-bl"].contract
    assert (contract.input_name, contract.output_name) == (INPUT_NAME, OUTPUT_NAME) == ("input", "heatmaps")
    assert not {"input_name", "output_name"} & set(contract.to_dict())
    assert ModelContract.from_json(contract.to_json()).input_name == "input"


def test_hrnet_normalisation_is_imagenet_rgb_in_pixel_units():
    contract = VARIANTS["hrnet-w32"].contract
    assert contract.channel_order == "RGB"
    assert contract.mean == pytest.approx((0.485 * 255, 0.456 * 255, 0.406 * 255))
    assert contract.std == pytest.approx((0.229 * 255, 0.224 * 255, 0.225 * 255))


@pytest.mark.parametrize("change, message", [
    ({"input_size": [250, 192]}, "divisible by the heatmap stride"),
    ({"channel_order": "RGBA"}, "channel_order"),
    ({"std": [1.0, 0.0, 1.0]}, "std > 0"),
    ({"flip_pairs": [[1, 17]]}, "outside 0..16"),
    ({"colour": "red"}, "unknown model contract fields"),
])
def test_invalid_records_are_refused(change, message):
    data = VARIANTS["hrnet-w32"].contract.to_dict()
    data.update(change)
    with pytest.raises(ContractError, match=message):
        ModelContract.from_dict(data)


def test_missing_fields_and_bad_json():
    with pytest.raises(ContractError, match="lacks"):
        ModelContract.from_dict({"name": "x"})
    with pytest.raises(ContractError, match="not valid JSON"):
        ModelContract.from_json("{")
