"""The examples and the README run, and do what they say.

`examples/train_classifier.py` is imported from its path and trained briefly
(it must learn, and thread BatchNorm statistics and the Dropout key through
its jitted step); it is also run as a script. Every ```python block of
README.md is executed in order in one namespace, so the README cannot rot.
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

import pax_trax
from pax_trax import nn

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_INSTALL_AND_DEMO = "pip install -e . && python examples/train_classifier.py"
README_TEST_COMMAND = 'pip install -e ".[test]" && python -m pytest'


def _load_example(name):
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"pax_trax_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def train_classifier():
    return _load_example("train_classifier")


@pytest.fixture(scope="module")
def trained(train_classifier):
    return train_classifier.main(n_steps=200, seed=0, verbose=False)


# --------------------------------------------------------- train_classifier


def test_train_classifier_learns(trained):
    assert set(trained) >= {"first_loss", "final_loss", "eval_accuracy"}
    # Three classes: an untrained model's loss is around log(3) or above.
    assert trained["first_loss"] > 0.9
    assert trained["final_loss"] < 0.5 * trained["first_loss"]
    # Chance is 1/3; the eval-mode model (running BN statistics) must be far above.
    assert trained["eval_accuracy"] > 0.85


def test_train_classifier_threads_state(train_classifier, trained):
    model = trained["model"]
    batchnorms = [m for m in model.modules() if isinstance(m, nn.BatchNorm)]
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(batchnorms) == 2 and len(dropouts) == 1
    for bn in batchnorms:
        assert bn.mode == "train"
        assert int(bn.n_batches) == 200  # one update per step, none lost
        assert float(np.abs(np.asarray(bn.running_mean)).max()) > 1e-3
        assert not np.allclose(np.asarray(bn.running_var), 1.0)
    x, _ = train_classifier.make_spirals(10, seed=0)
    fresh = train_classifier.make_model().init(x, jax.random.PRNGKey(0))
    fresh_drop = [m for m in fresh.modules() if isinstance(m, nn.Dropout)][0]
    assert not np.array_equal(np.asarray(dropouts[0].rng), np.asarray(fresh_drop.rng))


def test_train_step_returns_same_structure(train_classifier):
    """The step's output model has the input's treedef and avals: jit traces it once."""
    x, y = train_classifier.make_spirals(20, seed=3)
    model = train_classifier.make_model(hidden=8).init(x, jax.random.PRNGKey(1))
    optimizer = optax.adam(1e-2)
    opt_state = optimizer.init(model.parameters())
    step = train_classifier.make_train_step(optimizer)
    new_model, new_opt_state, loss = step(model, opt_state, x, y)

    def avals(tree):
        return [(np.shape(v), np.asarray(v).dtype) for v in jax.tree_util.tree_leaves(tree)]

    assert jax.tree_util.tree_structure(new_model) == jax.tree_util.tree_structure(model)
    assert avals(new_model) == avals(model)
    assert avals(new_opt_state) == avals(opt_state)
    assert np.shape(loss) == () and np.isfinite(float(loss))
    # Parameters moved; the plain eval-mode call works on the result.
    w0 = np.asarray(model.sublayers[0].w)
    assert not np.allclose(np.asarray(new_model.sublayers[0].w), w0)
    assert new_model.eval()(x).shape == (len(y), train_classifier.N_CLASSES)


def test_train_classifier_script_runs():
    result = subprocess.run(
        [sys.executable, "examples/train_classifier.py", "--steps", "50"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert re.search(r"^eval accuracy: \d\.\d{3}$", out, re.M), out[-2000:]
    assert re.search(r"^step +1 +loss \d", out, re.M)
    assert re.search(r"^step +50 +loss \d", out, re.M)
    assert "Serial[" in out and "BatchNorm" in out and "Dropout" in out  # print(model)
    assert "Total trainable parameters" in out  # model.summary()


# ------------------------------------------------------------------- README


def _readme_python_blocks():
    text = README.read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```[ \t]*$", text, re.S | re.M)


def test_readme_python_blocks_run(capsys):
    blocks = _readme_python_blocks()
    assert len(blocks) >= 3, "README.md lost its ```python blocks"
    namespace = {"__name__": "__readme__"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md[python block {i}]", "exec"), namespace)
    out = capsys.readouterr().out
    assert "Embedding_8192_256" in out  # print(model) of the quick start
    assert isinstance(namespace["model"], pax_trax.Module)


def test_readme_setup_commands_match_ci():
    text = README.read_text(encoding="utf-8")
    section = text.split("## Set-up in two commands", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^```bash\n(.*?)^```", section, re.S | re.M)
    assert [c.strip() for c in commands] == [README_INSTALL_AND_DEMO, README_TEST_COMMAND]
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK), ".ci/run must be executable"
    lines = [
        ln.strip() for ln in ci.read_text().splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    assert "set -euo pipefail" in lines
    assert lines[-1] == README_TEST_COMMAND  # CI runs exactly the README's command


def test_readme_has_sections():
    text = README.read_text(encoding="utf-8")
    for heading in (
        "## Quick start",
        "## Set-up in two commands",
        "## The module contract",
        "## Names: Trax and PAX",
        "## Running slow tests",
        "## Benchmarks",
        "## Layout",
    ):
        assert f"\n{heading}\n" in text, heading
    assert "python -m pytest --runslow" in text
    assert "benchmarks/RESULTS.md" in text
