"""The competition keys of probability competitions (issue 20): accepted as written, refused in one line naming
the key, and read back from the spec's own dict."""
import numpy as np
import pytest

from kit.data.spec import HPA, spec_from_dict
from kit.errors import KitError

RSNA_LIKE = {
    "classes": ["epidural", "subdural", "any"], "label_format": "long", "long_separator": "_",
    "submission_format": "long", "id_column": "ID", "target_column": "Label", "prediction_column": "Label",
    "image_layout": "file", "image_ext": "dcm", "channels": ["brain", "subdural", "soft"],
    "windows": [[40, 80], [80, 200], [40, 380]], "class_weights": {"any": 2},
}


def test_defaults_of_the_new_keys():
    assert (HPA.task, HPA.submission_format, HPA.label_format, HPA.long_separator) == (
        "multilabel", "labels", "indices", "_")
    assert HPA.group_column is None and HPA.windows is None
    np.testing.assert_array_equal(HPA.class_weight_array(), np.ones(28))


def test_rsna_like_spec_reads_and_round_trips():
    spec = spec_from_dict(RSNA_LIKE)
    assert spec.windows == ((40.0, 80.0), (80.0, 200.0), (40.0, 380.0))
    np.testing.assert_array_equal(spec.class_weight_array(), [1.0, 1.0, 2.0])
    assert spec_from_dict(spec.to_dict()) == spec


def test_wide_without_classes_is_pending_and_multiclass_accepted():
    spec = spec_from_dict({"label_format": "wide", "task": "multiclass", "submission_format": "wide",
                           "group_column": "PatientID"})
    assert spec.pending and spec.multiclass and spec.group_column == "PatientID"


def test_image_ext_none_and_gray():
    spec = spec_from_dict({"image_ext": "none", "image_layout": "file", "channels": ["gray"]})
    assert spec.image_suffix == "" and spec.num_channels == 1


@pytest.mark.parametrize("change, key", [
    ({"task": "softmax"}, "competition.task"),
    ({"submission_format": "probabilities"}, "competition.submission_format"),
    ({"label_format": "tall"}, "competition.label_format"),
    ({"long_separator": ""}, "competition.long_separator"),
    ({"windows": [[40, -1], [80, 200], [40, 380]]}, "competition.windows"),
    ({"windows": [[40, 80]]}, "competition.channels"),
    ({"windows": "header"}, "competition.windows"),
    ({"class_weights": {"any": 0}}, "competition.class_weights"),
    ({"class_weights": {"anything": 2}}, "competition.class_weights"),
    ({"class_weights": [2]}, "competition.class_weights"),
    ({"image_layout": "channels"}, "competition.image_ext"),
    ({"image_ext": "png"}, "competition.windows"),
    ({"classes": None}, "competition.classes"),
    ({"group_column": "ID"}, "competition.group_column"),
])
def test_bad_values_are_one_line_naming_the_key(change, key):
    data = {**RSNA_LIKE, **change}
    if data["classes"] is None:
        del data["classes"]
    with pytest.raises(KitError) as err:
        spec_from_dict(data, source="kit.yaml")
    assert key in str(err.value) and "\n" not in str(err.value)


def test_image_ext_none_needs_file_layout():
    with pytest.raises(KitError, match="image_ext: none"):
        spec_from_dict({"image_ext": "none"})
