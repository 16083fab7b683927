"""System 1: Ribeiro ResNet and autoECG, layer for layer; Table 2 from the released files."""

import json

import keras
import numpy as np
import pytest

import tf_ecg
from tf_ecg.cli import main
from tf_ecg.evaluation.label_files import evaluate_label_files
from tf_ecg.models.ribeiro import TRANSFER_CUT
from test_keras_hdf5 import write_tf_keras2_model_file

# Spec 1-ribeiro-autoecg.md, full layer list of a fresh build: (index, name, type).
LAYERS = """signal InputLayer|conv1d Conv1D|batch_normalization BatchNormalization|activation Activation|
conv1d_2 Conv1D|batch_normalization_1 BatchNormalization|activation_1 Activation|dropout Dropout|
max_pooling1d MaxPooling1D|conv1d_3 Conv1D|conv1d_1 Conv1D|add Add|batch_normalization_2 BatchNormalization|
activation_2 Activation|dropout_1 Dropout|conv1d_5 Conv1D|batch_normalization_3 BatchNormalization|
activation_3 Activation|dropout_2 Dropout|max_pooling1d_1 MaxPooling1D|conv1d_6 Conv1D|conv1d_4 Conv1D|add_1 Add|
batch_normalization_4 BatchNormalization|activation_4 Activation|dropout_3 Dropout|conv1d_8 Conv1D|
batch_normalization_5 BatchNormalization|activation_5 Activation|dropout_4 Dropout|max_pooling1d_2 MaxPooling1D|
conv1d_9 Conv1D|conv1d_7 Conv1D|add_2 Add|batch_normalization_6 BatchNormalization|activation_6 Activation|
dropout_5 Dropout|conv1d_11 Conv1D|batch_normalization_7 BatchNormalization|activation_7 Activation|dropout_6 Dropout|
max_pooling1d_3 MaxPooling1D|conv1d_12 Conv1D|conv1d_10 Conv1D|add_3 Add|batch_normalization_8 BatchNormalization|
activation_8 Activation|dropout_7 Dropout|flatten Flatten|dense Dense"""
EXPECTED_LAYERS = [tuple(item.split()) for item in LAYERS.replace("\n", "").split("|")]
TABLE2_F1 = {"1dAVb": 0.897, "RBBB": 0.944, "LBBB": 1.000, "SB": 0.882, "AF": 0.870, "ST": 0.960}


def trainable(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def test_ribeiro_resnet_layers_in_the_original_order():
    model = tf_ecg.build_model("ribeiro_resnet")
    # the original's layer kinds (tf_ecg computes some as subclasses: BatchNorm, PointwiseConv1D)
    assert [(layer.name, kind) for layer, (_, kind) in zip(model.layers, EXPECTED_LAYERS)
            if isinstance(layer, getattr(keras.layers, kind))] == EXPECTED_LAYERS
    assert model.count_params() == 6_425_638 and trainable(model) == 6_421_910
    assert model.layers[TRANSFER_CUT].output.shape[1:] == (16, 320)
    assert model.get_layer("dropout").rate == pytest.approx(0.2)


def test_tf_keras_reference_computes_what_the_port_computes():
    """The tf-keras 2 build that benchmarks/throughput.py times as the original: the same
    layers (50, 6,425,638 parameters) and, with the same weights, the same outputs."""
    pytest.importorskip("tf_keras")
    from tf_keras_references import ribeiro_resnet

    reference, port = ribeiro_resnet(), tf_ecg.build_model("ribeiro_resnet")
    assert len(reference.layers) == 50 and reference.count_params() == port.count_params() == 6_425_638
    port.set_weights(reference.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 4096, 12)).astype("float32")
    np.testing.assert_allclose(np.asarray(port(x, training=False)), reference(x, training=False).numpy(), atol=1e-5)


def test_same_padding_is_asymmetric_like_the_original():
    """An impulse through a k=16 'same' conv: 7 samples of padding on the left, 8 on the right."""
    conv = keras.layers.Conv1D(1, 16, padding="same", use_bias=False, kernel_initializer="ones")
    x = np.zeros((1, 64, 1), "float32")
    x[0, 0, 0] = 1
    response = np.asarray(conv(x))[0, :, 0]
    assert np.flatnonzero(response).tolist() == list(range(0, 8))  # outputs 0..7 see input 0


def test_autoecg_single():
    model = tf_ecg.build_model("autoecg_single")
    assert len(model.layers) == 50 and model.count_params() == 3_288_993
    assert model.get_layer("conv1d").kernel_size == (8,) and model.get_layer("dropout").rate == 0.5


def test_autoecg_transfer_counts_and_cut():
    model = tf_ecg.build_model("autoecg_transfer")
    assert len(model.layers) == 54
    assert model.count_params() == 6_489_665 and trainable(model) == 6_342_449
    assert model.layers[TRANSFER_CUT].name == "batch_normalization_8"
    assert model.layers[TRANSFER_CUT + 1].name == "transfer_conv1"
    assert [layer.trainable for layer in model.layers[:6]] == [False] * 5 + [True]


def test_freezing_survives_compile_training_and_checkpoints(tmp_path):
    model = tf_ecg.build_model("autoecg_transfer")
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    before = [np.array(w) for w in model.weights]
    x = np.random.default_rng(0).normal(size=(4, 4096, 12)).astype("float32")
    model.train_on_batch(x, np.array([[0], [1], [0], [1]], "float32"))
    frozen = {id(w) for layer in model.layers[:5] for w in layer.weights}
    for weight, old in zip(model.weights, before):
        if id(weight) in frozen:
            np.testing.assert_array_equal(np.array(weight), old)  # frozen: not even BN statistics move
    changed = [not np.array_equal(np.array(w), old) for w, old in zip(model.weights, before) if id(w) not in frozen]
    assert any(changed) and model.get_layer("transfer_output").weights[0] is not None
    model.save(tmp_path / "transfer.keras")
    reloaded = keras.models.load_model(tmp_path / "transfer.keras")
    # (the weightless InputLayer's flag is not serialised; the layers with weights keep theirs)
    assert [layer.trainable for layer in reloaded.layers[1:6]] == [False] * 4 + [True]
    assert trainable(reloaded) == 6_342_449


def test_model_hdf5_in_the_original_layout_loads_with_identical_outputs(tmp_path):
    source = tf_ecg.build_model("ribeiro_resnet")
    rng = np.random.default_rng(3)
    for layer in source.layers:
        layer.set_weights([rng.normal(scale=0.05, size=w.shape).astype("float32") + (1 if "variance" in w.path else 0)
                           for w in layer.weights])
    path = tmp_path / "model.hdf5"
    write_tf_keras2_model_file(path, source)
    x = rng.normal(size=(2, 4096, 12)).astype("float32")
    target = tf_ecg.load_original_weights(tf_ecg.build_model("ribeiro_resnet"), path)
    np.testing.assert_array_equal(np.asarray(target(x)), np.asarray(source(x)))
    transfer = tf_ecg.build_model("autoecg_transfer", base_weights=str(path))
    cut = keras.Model(transfer.input, transfer.layers[TRANSFER_CUT].output)
    reference = keras.Model(source.input, source.layers[TRANSFER_CUT].output)
    np.testing.assert_array_equal(np.asarray(cut(x)), np.asarray(reference(x)))


def test_table2_from_the_released_predictions(shared_data):
    annotations = shared_data / "code-test" / "annotations"
    thresholded = evaluate_label_files(annotations / "gold_standard.csv", annotations / "dnn.csv")
    scored = evaluate_label_files(annotations / "gold_standard.csv",
                                  shared_data / "code-test" / "dnn_predicts" / "other_seeds" / "model_1.npy", "table2")
    for report in (thresholded, scored):
        assert {c: round(v["f1"], 3) for c, v in report["per_class"].items()} == TABLE2_F1
        assert [report["per_class"]["1dAVb"][k] for k in ("tn", "fp", "fn", "tp")] == [795, 4, 2, 26]
        assert round(report["per_class"]["AF"]["specificity"], 3) == 1.000
    assert round(scored["per_class"]["1dAVb"]["auc"], 4) == 0.9963
    main_model = evaluate_label_files(annotations / "gold_standard.csv",
                                      shared_data / "code-test" / "dnn_predicts" / "model.npy", "table2")
    assert [round(v["f1"], 3) for v in main_model["per_class"].values()] == [0.857, 0.919, 0.984, 0.833, 0.783, 0.947]


def test_evaluate_cli_on_label_files(shared_data, tmp_path, capsys):
    annotations = shared_data / "code-test" / "annotations"
    assert main(["evaluate", "--labels", str(annotations / "gold_standard.csv"),
                 "--predictions", str(annotations / "dnn.csv"), "--out", str(tmp_path / "t2.json")]) == 0
    assert "0.897" in capsys.readouterr().out
    assert json.loads((tmp_path / "t2.json").read_text())["per_class"]["ST"]["tp"] == 36
    assert main(["evaluate", "--labels", str(annotations / "gold_standard.csv"),
                 "--predictions", str(shared_data / "code-test" / "attributes.csv")]) == 2
    assert "missing class column(s)" in capsys.readouterr().err


def test_ptbxl_in_code_format(ptbxl_dir):
    from tf_ecg.data.sources import load_source

    splits = load_source({"source": "ptbxl_code_format", "labels": "normal_vs_abnormal"}, ptbxl_dir.parent)
    x, y = splits.test
    assert x.shape[1:] == (4096, 12) and y.shape[1] == 1
    assert np.all(x[:, :48] == 0) and np.all(x[:, -48:] == 0) and np.abs(x[:, 48:-48]).max() > 0.1
    assert sum(len(part[1]) for part in (splits.train, splits.val, splits.test)) == 500
    six = load_source({"source": "ptbxl_code_format", "labels": "ribeiro6"}, ptbxl_dir.parent)
    assert six.output_names == ["1dAVb", "RBBB", "LBBB", "SB", "AF", "ST"] and six.train[1].shape[1] == 6
