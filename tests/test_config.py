"""Strict, typed recipes: every packaged recipe loads and builds; every mistake names its key and file."""

import pytest

import tf_ecg
from tf_ecg.cli import main
from tf_ecg.config import (dumps_toml, load_leave_one_out_recipe, load_recipe, parse_override, recipes_dir,
                           differences)
from tf_ecg.errors import RecipeError

RECIPES = sorted(recipes_dir().glob("*.toml"))
TRAINING = [p for p in RECIPES if "leave_one_out" not in p.name]

GOOD = """
name = "good"
[data]
source = "mitbih_beats"
before = 80
after = 80
[model]
name = "loo_conv1d"
options = { num_classes = 5 }
[training]
task = "multiclass"
loss = { name = "SparseCategoricalCrossentropy", from_logits = true }
optimizer = { name = "adam", learning_rate = 0.001 }
batch_size = 32
epochs = 2
early_stopping = { patience = 3 }
"""
STEP_SCHEDULE = ('learning_rate = { module = "keras.optimizers.schedules", class_name = "ExponentialDecay", '
                 'config = { initial_learning_rate = 0, decay_steps = 10, decay_rate = 0.5 } }')


def test_the_checkout_models_folder_is_the_packaged_recipes():
    assert len(RECIPES) == 19
    assert (recipes_dir().parents[1] / "models" / "quickstart_deepfake_hr.toml").resolve() == \
        (recipes_dir() / "quickstart_deepfake_hr.toml").resolve()


@pytest.mark.parametrize("path", TRAINING, ids=lambda p: p.stem)
def test_every_recipe_loads_and_builds(path, tmp_path):
    recipe = load_recipe(path)
    options = dict(recipe.model.options)
    if recipe.model.name == "inception1d_combined":  # its trained regressors are set per run
        options["regressor_weights"] = {}
    model = tf_ecg.build_model(recipe.model.name, **options)
    assert model.count_params() > 0
    if recipe.task in ("binary", "regression"):
        assert model.output_shape[-1] == 1
    # the resolved recipe reads back as the same recipe
    resolved = tmp_path / "recipe.toml"
    resolved.write_text(recipe.to_toml())
    assert differences(recipe.to_dict(), load_recipe(resolved).to_dict()) == []


def test_the_leave_one_out_recipe_goes_through_the_same_loader():
    recipe = load_leave_one_out_recipe("loo_conv1d_leave_one_out")
    assert recipe.leave_one_out.epochs == 10 and recipe.leave_one_out.transfer is True
    with pytest.raises(RecipeError, match="leave-one-out recipe"):
        load_recipe("loo_conv1d_leave_one_out")


@pytest.mark.parametrize("change, message", [
    (("early_stopping = { patience = 3 }", "early_stoping = { patience = 3 }"),
     "unknown [training] key(s) ['early_stoping'] (did you mean 'early_stopping'"),
    (("before = 80", "befor = 80"), "unknown [data] key(s) ['befor'] (did you mean 'before'"),
    (("batch_size = 32\n", ""), "[training] is missing the required key 'batch_size'"),
    (("batch_size = 32", "batch_size = 0"), "training.batch_size = 0: must be a positive integer"),
    (("batch_size = 32", 'batch_size = "32"'), "training.batch_size = '32': expected int, got str"),
    (("epochs = 2", "epochs = -1"), "training.epochs = -1: must be a positive integer"),
    (("epochs = 2", "epochs = 2.5"), "training.epochs = 2.5: expected int, got float"),
    (('task = "multiclass"', 'task = "classify"'), "training.task = 'classify': must be one of"),
    (("num_classes = 5", "num_clases = 5"), "unknown [model.options] key(s) ['num_clases']"),
    (('source = "mitbih_beats"', 'source = "mitbih"'), "unknown data source 'mitbih'"),
    (('name = "loo_conv1d"', 'name = "loo_conv"'), "unknown model 'loo_conv'"),
    (("after = 80", "after = [80]"), "data.after = [80]: expected int, got list"),
    (("[training]", "[training]\nschedule = { name = \"exponential\" }"),
     "training.schedule (exponential) is missing the required key 'decay_rate'"),
    (("[model]", "[modle]\n[model]"), "unknown key(s) ['modle']"),
    (("learning_rate = 0.001", "learning_rate = { class_name = \"ExponentialDecay\", config = { decay_steps = 9 } }"),
     "a schedule table needs config.initial_learning_rate"),
    (("learning_rate = 0.001", STEP_SCHEDULE), "training.optimizer.learning_rate.config.initial_learning_rate = 0: must be above 0"),
    (("learning_rate = 0.001 }", STEP_SCHEDULE.replace("initial_learning_rate = 0,", "initial_learning_rate = 1e-3,")
      + " }\nschedule = { name = \"exponential\", decay_rate = 0.9 }"),
     "is a per-step schedule: training.schedule would change it too"),
])
def test_recipe_mistakes_name_the_key_and_the_file(tmp_path, change, message):
    path = tmp_path / "recipe.toml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    assert message in str(error.value)
    assert str(error.value).startswith(str(path))


def test_set_takes_toml_values():
    assert parse_override("training.epochs=3") == ("training.epochs", 3)
    assert parse_override("optimizer.learning_rate=1e-3") == ("optimizer.learning_rate", 1e-3)
    assert parse_override("data.records=['100', '101']") == ("data.records", ["100", "101"])
    assert parse_override("training.early_stopping={ patience = 5 }") == ("training.early_stopping", {"patience": 5})
    assert parse_override("model.initial_weights=runs/hr/best.keras") == ("model.initial_weights", "runs/hr/best.keras")
    assert parse_override('data.target="QT"') == ("data.target", "QT")
    assert parse_override("training.drop_remainder=true") == ("training.drop_remainder", True)
    for bad in ("training.epochs", "epochs=3", "training.epochs=", "training.batch_size=3 4"):
        with pytest.raises(RecipeError):
            parse_override(bad)


@pytest.mark.parametrize("argv, message", [
    (["--set", "training.epochs"], "expected SECTION.KEY=VALUE"),
    (["--set", "training.batch_size=abc"], "training.batch_size = 'abc': expected int, got str"),
    (["--epochs", "0"], "argument --epochs: 0 is out of range: must be >= 1"),
    (["--epochs", "-1"], "argument --epochs: -1 is out of range: must be >= 1"),
    (["--set", "training.epochs=0"], "training.epochs = 0: must be a positive integer"),
    (["--set", "data.val_fraction=1.5"], "data.val_fraction = 1.5: must be in [0, 1)"),
    (["--set", "training.optimizer.learning_rate=0"], "training.optimizer.learning_rate = 0: must be above 0"),
    (["--set", "training.batch_size=-4"], "training.batch_size = -4: must be a positive integer"),
    (["--set", "data.befor=40"], "unknown [data] key(s) ['befor']"),
])
def test_the_command_line_refuses_bad_overrides_before_any_work(tmp_path, capsys, argv, message):
    recipe = tmp_path / "good.toml"
    recipe.write_text(GOOD)
    run_dir = tmp_path / "run"
    assert main(["train", str(recipe), "--run-dir", str(run_dir), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not run_dir.exists()


def test_leave_one_out_overrides_are_checked(tmp_path, capsys):
    assert main(["leave-one-out", "--out", str(tmp_path / "loo"), "--set", "leave_one_out.epoch=3"]) == 2
    assert "unknown [leave_one_out] key(s) ['epoch']" in capsys.readouterr().err
    assert main(["leave-one-out", "--out", str(tmp_path / "loo"), "--epochs", "0"]) == 2
    assert "argument --epochs: 0 is out of range: must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "loo").exists()


def test_a_missing_or_broken_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match="recipe not found"):
        load_recipe(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[data\nsource=")
    with pytest.raises(RecipeError, match="invalid TOML"):
        load_recipe(broken)


def test_resolved_recipes_are_valid_toml():
    import tomllib

    text = dumps_toml({"name": "x", "data": {"a": [1, 2], "b": "q\"uote", "c": {"d": 1e-8, "e": True}}})
    assert tomllib.loads(text) == {"name": "x", "data": {"a": [1, 2], "b": "q\"uote", "c": {"d": 1e-8, "e": True}}}


def test_a_per_step_schedule_is_a_keras_schedule_the_optimizer_steps():
    """Kachuee et al.'s decay, x0.75 every 10,000 iterations, as its recipe writes it."""
    from tf_ecg.config import initial_learning_rate
    from tf_ecg.training.compiling import build_optimizer

    recipe = load_recipe("kachuee_residual_cnn")
    assert initial_learning_rate(recipe.training.optimizer) == 1e-3
    optimizer = build_optimizer(recipe.training)
    optimizer.iterations.assign(20_000)
    assert float(optimizer.learning_rate) == pytest.approx(1e-3 * 0.75 ** 2)
    with pytest.raises(RecipeError, match="runtime.learning_rate_scaling would change it too"):
        load_recipe("kachuee_residual_cnn", {"runtime.learning_rate_scaling": "linear"})
