"""Keras HDF5 weights in tf.keras 2's ``model.save`` layout, written with h5py."""

import h5py
import numpy as np
import pytest

import tf_ecg
from tf_ecg.errors import WeightFileError


def write_tf_keras2_model_file(path, model, renamed_prefix="layer_"):
    """The layout tf.keras 2 ``model.save('x.hdf5')`` writes: /model_weights with
    layer_names / weight_names attributes; layer names as a TF1-era file might have them."""
    with h5py.File(path, "w") as handle:
        handle.attrs["keras_version"] = b"2.3.0-tf"
        handle.attrs["backend"] = b"tensorflow"
        group = handle.create_group("model_weights")
        names = []
        for i, layer in enumerate(model.layers):
            name = f"{renamed_prefix}{i}"
            names.append(name.encode())
            layer_group = group.create_group(name)
            weight_names = []
            for weight in layer.weights:
                weight_name = f"{name}/{weight.name}:0"
                layer_group.create_dataset(weight_name, data=np.asarray(weight))
                weight_names.append(weight_name.encode())
            layer_group.attrs["weight_names"] = weight_names
        group.attrs["layer_names"] = names


def test_hdf5_weights_give_identical_outputs(tmp_path):
    source = tf_ecg.build_model("inception1d", input_length=64, num_outputs=5)
    x = np.random.default_rng(0).random((3, 64, 8), dtype="float32")
    for layer in source.layers:  # non-trivial BN statistics too
        layer.set_weights([np.random.default_rng(1).normal(size=w.shape).astype("float32") ** 2
                           for w in layer.weights])
    path = tmp_path / "model.hdf5"
    write_tf_keras2_model_file(path, source)
    target = tf_ecg.load_original_weights(tf_ecg.build_model("inception1d", input_length=64, num_outputs=5), path)
    np.testing.assert_array_equal(np.asarray(target(x, training=False)), np.asarray(source(x, training=False)))


def test_hdf5_shape_mismatch_names_the_layer(tmp_path):
    path = tmp_path / "model.hdf5"
    write_tf_keras2_model_file(path, tf_ecg.build_model("loo_conv1d", num_classes=14))
    with pytest.raises(WeightFileError, match="layer_9"):
        tf_ecg.load_original_weights(tf_ecg.build_model("loo_conv1d", num_classes=5), path)


def test_unknown_weight_format(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\x00" * 16)
    with pytest.raises(WeightFileError, match="unknown weight format"):
        tf_ecg.load_original_weights(tf_ecg.build_model("loo_conv1d"), path)


def test_torch_file_for_a_model_without_a_weight_map(originals):
    path = originals / "weights" / "glucose" / "effnetv2_ecg_l_xxxs_20240111_epoch150_1e-4.pth"
    with pytest.raises(WeightFileError, match="no PyTorch weight map for model 'loo_conv1d'"):
        tf_ecg.load_original_weights(tf_ecg.build_model("loo_conv1d"), path)
