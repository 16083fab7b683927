import pytest

import tf_ecg
from tf_ecg.registry import UnknownModelError


def test_model_names_lists_registered_systems():
    names = tf_ecg.model_names()
    for expected in ("inception1d", "pulse2pulse_generator", "loo_conv1d"):
        assert expected in names
    assert names == sorted(names)


def test_build_model_names_the_keras_model_after_the_registry():
    assert tf_ecg.build_model("loo_conv1d").name == "loo_conv1d"


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(UnknownModelError) as error:
        tf_ecg.build_model("resnet9000")
    assert "resnet9000" in str(error.value) and "inception1d" in str(error.value)
