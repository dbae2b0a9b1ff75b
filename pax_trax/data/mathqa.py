"""MathQA, AQuA and DROP inputs: Trax's ``trax.data.tf_inputs`` math-reasoning sources.

MathQA problems come with a program in a small language of operations
(``linear_formula``), e.g. ``'divide(n0,n1)|multiply(#0,const_60)|'``:
``nK`` is the K-th number of the problem's text, ``#K`` the result of the
K-th operation, ``const_...`` a constant (``const_100``, ``const_0_25`` is
0.25, ``const_pi``, ``const_deg_to_rad``). This module runs such programs
(`compute_result`), translates them to Python (`compute_program`), and makes
text-to-text example streams from the datasets' JSON files:
`CreateMathQAInputs`, `CreateAquaInputs`, `CreateAnnotatedDropInputs`, and
from TFDS's ``'drop'`` dataset `CreateDropInputs`. Each ``Create...`` returns
a stream function ``f(generator=None)`` of ``(input_text, target_text,
weights)`` triples (``weights`` is one 1 per character of the target, as
Trax), endless, to be tokenized next (`pax_trax.data.Tokenize`).

>>> compute_nums('a train travels 60 km in 1.5 hours . what is its speed ?')
[60.0, 1.5]
>>> compute_result(compute_ops('divide(n0,n1)|multiply(#0,const_1000)|'), [60.0, 1.5])
[40.0, 40000.0]
>>> compute_program(['divide(n0,n1)', 'multiply(#0,const_1000)'])
['t0 = n0 / n1', 't1 = t0 * 1000.0']

Only `CreateDropInputs` needs TensorFlow Datasets (imported when called);
the other functions read local files with plain Python (paths with a scheme,
such as ``gs://...``, through ``tf.io.gfile``, as Trax).

Differences from Trax 1.4.1 (each also noted where it applies):

* Errors instead of silent garbage: an unknown operation, a wrong number of
  arguments, an argument that is neither ``nK``, ``#K`` nor a constant, an
  undefined result (``sqrt`` of a negative edge, a division by zero outside
  the safe ``divide``/``inverse``) raise ValueError naming the function. The
  ``Create...`` streams skip MathQA examples whose program fails this way
  (Trax skipped unknown operations and crashed on the rest), and raise
  instead of looping forever when a whole pass of the data gives no example.
* Randomness (order prediction, AQuA's partial reasoning) comes from a
  keyword-only ``seed`` (NumPy ``default_rng``; Trax used the global RNGs);
  each call of the stream function starts again from the seed.
* `convert_float_to_mathqa` goes by value: ``'40'`` and ``40.0`` give
  ``'const_40'`` (Trax gave ``'const_40_'`` for the string and
  ``'const_40_0'`` for ``'40.0'``), negatives ``'const_-2_5'``, which
  `compute_result` reads back as -2.5.
* Generated Python needs only ``math``: ``gcd``, ``lcm``, ``choose`` and
  ``permutation`` use ``math.gcd``, ``math.lcm``, ``math.comb``, ``math.perm``
  (Trax emitted ``scipy.gcd``, gone from SciPy, and a quotient of
  factorials); ``speed_in_still_water`` and ``stream_speed`` are
  parenthesized as computed (Trax emitted ``a + b / 2``); a division by a
  literal zero is ``0`` as computed; no trailing comments. ``choose``
  truncates its arguments to ints (Trax's ``scipy.special.comb`` took real
  ones).
* Fixed flags: ``partial_results`` reports each operation's own result
  (Trax repeated the final answer after every step); AQuA's
  ``partial_reasoning`` uses the random prefix of the rationale it draws
  (Trax drew it and then used the whole rationale).
* The correct option's number is read from that option's text only (Trax
  searched onwards into the following options), with fractions ``1 / 2`` at
  any spacing.
"""

from __future__ import annotations

import json
import math

import numpy as np

from pax_trax.data._dataset_files import (
    _dataset_path,
    _join,
    _json_lines,
    _no_example_error,
    _read_text,
    _weights,
)
from pax_trax.data._mathqa_programs import (
    _MATHQA_KEYS,
    _P,
    _check_example,
    compute_nums,
    compute_ops,
    compute_program,
    compute_result,
    compute_single_result,
    convert_float_to_mathqa,
    convert_to_subtract,
    process_single_mathqa_example,
    single_op_to_python_command,
)

# (The DROP streams live in their own file; they are part of this module's API.)
from pax_trax.data.drop_inputs import CreateAnnotatedDropInputs, CreateDropInputs

__all__ = [
    "CreateAnnotatedDropInputs",
    "CreateAquaInputs",
    "CreateDropInputs",
    "CreateMathQAInputs",
    "compute_nums",
    "compute_ops",
    "compute_program",
    "compute_result",
    "compute_single_result",
    "convert_float_to_mathqa",
    "convert_to_subtract",
    "process_single_mathqa_example",
    "single_op_to_python_command",
]


# ------------------------------------------------------------------ MathQA


def _python_code_target(python_program, list_num):
    """The Python program of a MathQA example: imports, ``nK = ...``, ``tK = ...``, ``answer =``."""
    code = "import math\n" if any("math" in line for line in python_program) else ""
    code += "".join(f"n{i} = {num}\n" for i, num in enumerate(list_num))
    code += "\n".join(python_program[:-1])
    return code + "\nanswer =" + python_program[-1].partition("=")[2]


def _run_python_code(code):
    """The ``answer`` of a generated program, or None when it fails."""
    namespace = {}  # one namespace: a lambda in the code (Heron's formula) must see `import math`
    try:
        exec(code, namespace)  # code generated from _OPS' templates, names and numbers only
    except (ArithmeticError, ValueError, TypeError):
        return None
    answer = namespace.get("answer")
    return answer if isinstance(answer, (int, float)) else None


def CreateMathQAInputs(  # noqa: N802 (Trax name)
    dataset_path=None,
    train=True,
    tolerance=0.01,
    cumulative=True,
    python_code=False,
    partial_results=True,
    nlp_rationale=False,
    correct_answer=False,
    answer_in_mathqa_format=True,
    correct_answer_given_reasoning=False,
    category=False,
    order_prediction=False,
    reduced_operation_name=True,
    qed=False,
    *,
    seed=None,
):
    """A stream of MathQA examples ``(input, target, weights)`` from ``train.json`` or ``dev.json``.

    Only examples whose program agrees with the declared answer are kept:
    ``math.isclose(answer, result, rel_tol=tolerance)`` (e.g. ``calculate
    85184 ÷ ? = 352`` with ``multiply(n0,n1)`` is dropped), and neither may
    be 0. Examples whose program cannot run, or whose correct option has no
    number, are skipped too. Every input starts with the problem followed by
    its numbers: ``'<Problem> n0 = 60.0 n1 = 1.5'`` (the "prefix"). The
    first flag set, in this order, chooses the task:

    * ``cumulative`` (default): one example per operation; input the prefix
      plus the operations before it (each followed by ``' #k = <its result>'``
      with ``partial_results``), target the operation.
    * ``python_code``: input ``'# ' + prefix``, target a Python program
      (``import math``, ``n0 = ...``, ``t0 = ...``, ``answer = ...``); kept
      only if running it gives the answer within `tolerance`.
    * ``nlp_rationale``: ``'infer full rationale: ' + prefix`` -> ``Rationale``.
    * ``correct_answer``: ``'infer correct answer: ' + prefix + ' ' + options``
      -> the answer as ``'subtract(const_40,const_0)'`` with
      ``answer_in_mathqa_format``, else the option's letter.
    * ``correct_answer_given_reasoning``: ``'infer correct answer given
      reasoning: ' + prefix + ' ' + operations + ' ' + options`` -> the letter.
    * ``category``: ``'infer category: ' + prefix`` -> ``category``.
    * ``order_prediction``: ``'order prediction: ' + prefix + ' ' +
      operations`` (names only with ``reduced_operation_name``), where with
      probability 0.5 two operations were swapped -> ``'not_ordered'``, else
      ``'ordered'``.
    * otherwise: ``'infer full calculation: ' + prefix`` -> ``linear_formula``.

    Args:
      dataset_path: the directory of MathQA's ``train.json`` and ``dev.json``
        (JSON arrays of problems, see `process_single_mathqa_example`).
      train: ``train.json`` if True, else ``dev.json``.
      tolerance: the relative tolerance between the program's result and the
        declared answer.
      cumulative, python_code, nlp_rationale, correct_answer,
      correct_answer_given_reasoning, category, order_prediction: the task.
      partial_results: with ``cumulative``, report each operation's result in
        the input (Trax reported the final answer after every operation).
      answer_in_mathqa_format: with ``correct_answer``, the target as a MathQA
        program (`convert_float_to_mathqa`, `convert_to_subtract`).
      reduced_operation_name: with ``order_prediction``, list the operations'
        names without arguments.
      qed: append an operation ``'qed'`` to the program.
      seed: pax_trax addition (keyword-only): the seed of ``order_prediction``'s
        swaps; each call of the stream function starts from it. None: fresh
        entropy.

    Returns:
      A stream function ``f(generator=None)``: an endless iterator of
      ``(input_text, target_text, weights)``, weights an int64 array of ones,
      one per character of the target.

    >>> import json, os, tempfile
    >>> problem = {'Problem': 'a train travels 60 km in 1.5 hours . find its speed in km / hr .',
    ...            'Rationale': '"speed = 60 / 1.5 = 40 km / hr answer : b"', 'category': 'physics',
    ...            'options': 'a ) 30 , b ) 40 , c ) 45 , d ) 90 , e ) none', 'correct': 'b',
    ...            'annotated_formula': 'divide(n0, n1)', 'linear_formula': 'divide(n0,n1)|'}
    >>> tmp = tempfile.TemporaryDirectory()
    >>> directory = tmp.name
    >>> with open(os.path.join(directory, 'train.json'), 'w') as f:
    ...     json.dump([problem], f)
    >>> inputs, target, weights = next(CreateMathQAInputs(directory, cumulative=False)())
    >>> inputs
    'infer full calculation: a train travels 60 km in 1.5 hours . find its speed in km / hr . n0 = 60.0 n1 = 1.5'
    >>> target, weights
    ('divide(n0,n1)|', array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]))
    >>> tmp.cleanup()
    """
    who = _P + "CreateMathQAInputs"
    directory = _dataset_path(dataset_path, who)
    path = _join(directory, "train.json" if train else "dev.json")
    text = _read_text(path, who, "MathQA's train.json / dev.json: a JSON array of problems")
    try:
        dataset = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{who}: {path!r} is not JSON ({err}); expected a JSON array of "
                         "MathQA problems.") from err
    if not isinstance(dataset, list):
        raise ValueError(f"{who}: {path!r} holds a {type(dataset).__name__}; expected a JSON array "
                         "of MathQA problems.")
    flags = {"cumulative": cumulative, "python_code": python_code, "nlp_rationale": nlp_rationale,
             "correct_answer": correct_answer, "correct_answer_given_reasoning": correct_answer_given_reasoning,
             "category": category, "order_prediction": order_prediction}
    task = next((name for name, flag in flags.items() if flag), "full_calculation")
    keys = list(_MATHQA_KEYS) + {"nlp_rationale": ["Rationale"], "category": ["category"]}.get(task, [])
    for index, example in enumerate(dataset):
        _check_example(example, keys, who, f"problem {index} of {path!r}", text_keys=keys)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise ValueError(f"{who}: tolerance must be a number >= 0, got {tolerance!r}.")

    def examples_of(example, rng):
        try:
            result = process_single_mathqa_example(example)
        except ValueError:
            return None  # a program that cannot run (an unknown operation, a bad reference, ...)
        if result is None:
            return None
        answer_num, python_result, python_program, list_op, list_num = result
        if not answer_num or not python_result[-1]:
            return None
        if not math.isclose(answer_num, python_result[-1], rel_tol=tolerance):
            return None
        if qed:
            list_op = list_op + ["qed"]
        prefix = example["Problem"] + "".join(f" n{i} = {num}" for i, num in enumerate(list_num))
        if task == "cumulative":
            steps = []
            for i, op in enumerate(list_op):
                steps.append((prefix, op))
                prefix += " " + op
                if partial_results and i < len(python_result):
                    prefix += f" #{i} = {python_result[i]}"
            return steps
        if task == "python_code":
            code = _python_code_target(python_program, list_num)
            answer = _run_python_code(code)
            if answer is None or not math.isclose(answer_num, answer, rel_tol=tolerance):
                return None
            return [("# " + prefix, code)]
        if task == "nlp_rationale":
            return [("infer full rationale: " + prefix, example["Rationale"])]
        if task == "correct_answer":
            inputs = "infer correct answer: " + prefix + " " + example["options"]
            if answer_in_mathqa_format:
                return [(inputs, convert_to_subtract(convert_float_to_mathqa(answer_num)))]
            return [(inputs, example["correct"])]
        if task == "correct_answer_given_reasoning":
            return [("infer correct answer given reasoning: " + prefix + " " + " ".join(list_op)
                     + " " + example["options"], example["correct"])]
        if task == "category":
            return [("infer category: " + prefix, example["category"])]
        if task == "order_prediction":
            list_op, target = _maybe_swap(list(list_op), rng)
            if reduced_operation_name:
                list_op = [op.split("(")[0] for op in list_op]
            return [("order prediction: " + prefix + " " + " ".join(list_op), target)]
        return [("infer full calculation: " + prefix, example["linear_formula"])]

    def mathqa_yield_examples(generator=None):
        del generator  # (a stream source, as Trax's)
        rng = np.random.default_rng(seed)
        while True:
            yielded = False
            for example in dataset:
                for inputs, target in examples_of(example, rng) or ():
                    yielded = True
                    yield inputs, target, _weights(target)
            if not yielded:
                raise _no_example_error(who, path, f"none of its {len(dataset)} problems has a program "
                                        f"that runs and agrees with its answer within tolerance={tolerance}")

    return mathqa_yield_examples


def _maybe_swap(items, rng):
    """With probability 0.5 (and at least 2 items) swaps two random items: ``(items, target)``."""
    if rng.random() < 0.5 and len(items) >= 2:
        i, j = rng.choice(len(items), size=2, replace=False)
        items[i], items[j] = items[j], items[i]
        return items, "not_ordered"
    return items, "ordered"


# ------------------------------------------------------------------ AQuA

_AQUA_KEYS = ("question", "rationale", "options", "correct")


def CreateAquaInputs(  # noqa: N802 (Trax name)
    dataset_path=None,
    train=True,
    cumulative=False,
    rationale=False,
    correct_answer=False,
    correct_answer_given_reasoning=False,
    partial_reasoning=True,
    order_prediction=False,
    *,
    seed=None,
):
    """A stream of AQuA-RAT examples ``(input, target, weights)`` from ``train.json`` or ``dev.json``.

    AQuA's files hold one JSON object a line with ``question``,
    ``options`` (a list such as ``['A)21', 'B)21.5', ...]``), ``rationale``
    (steps separated by newlines) and ``correct`` (a letter). The first flag
    set, in this order, chooses the task:

    * ``cumulative``: one example per step of the rationale: input
      ``'infer cumulative rationale: ' + question`` plus the steps before it
      (each after a space), target the step.
    * ``rationale``: ``'infer full rationale: ' + question`` -> ``rationale``.
    * ``correct_answer``: ``'infer correct answer: ' + question + ' ' +
      options`` -> ``correct``.
    * ``correct_answer_given_reasoning``: ``'infer correct answer given
      reasoning: ' + question + ' ' + reasoning + ' ' + options`` -> ``correct``;
      with ``partial_reasoning`` the reasoning is a random prefix of the
      rationale's steps (0 to all but one of them; Trax drew it but then used
      the whole rationale), else the whole rationale.
    * ``order_prediction``: ``'order prediction: ' + question + ' ' + steps``
      (joined by newlines), where with probability 0.5 two steps were swapped
      -> ``'not_ordered'``, else ``'ordered'``.

    Args:
      dataset_path: the directory of AQuA's ``train.json`` and ``dev.json``.
      train: ``train.json`` if True, else ``dev.json``.
      cumulative, rationale, correct_answer, correct_answer_given_reasoning,
      order_prediction: the task; one must be True (checked here; Trax raised
        on the first example).
      partial_reasoning: see ``correct_answer_given_reasoning``.
      seed: pax_trax addition (keyword-only): the seed of the random prefixes
        and swaps; each call of the stream function starts from it.

    Returns:
      A stream function ``f(generator=None)``: an endless iterator of
      ``(input_text, target_text, weights)`` (int64 ones, one per target
      character).

    >>> import json, os, tempfile
    >>> problem = {'question': 'Two dice are thrown. Chance of a double six?',
    ...            'options': ['A)1/6', 'B)1/12', 'C)1/36', 'D)1/18', 'E)1/3'],
    ...            'rationale': 'P(six) = 1/6 for each die.\\n1/6 * 1/6 = 1/36\\nANSWER:C', 'correct': 'C'}
    >>> tmp = tempfile.TemporaryDirectory()
    >>> directory = tmp.name
    >>> with open(os.path.join(directory, 'train.json'), 'w') as f:
    ...     _ = f.write(json.dumps(problem) + '\\n')
    >>> next(CreateAquaInputs(directory, correct_answer=True)())[:2]
    ('infer correct answer: Two dice are thrown. Chance of a double six? A)1/6 B)1/12 C)1/36 D)1/18 E)1/3', 'C')
    >>> tmp.cleanup()
    """
    who = _P + "CreateAquaInputs"
    if not (cumulative or rationale or correct_answer or correct_answer_given_reasoning or order_prediction):
        raise ValueError(f"{who}: one of cumulative, rationale, correct_answer, "
                         "correct_answer_given_reasoning, order_prediction must be True.")
    directory = _dataset_path(dataset_path, who)
    path = _join(directory, "train.json" if train else "dev.json")
    text = _read_text(path, who, "AQuA's train.json / dev.json: one JSON problem a line")
    dataset = _json_lines(text, path, who)
    for index, example in enumerate(dataset):
        _check_example(example, _AQUA_KEYS, who, f"problem {index} of {path!r}",
                       text_keys=("question", "rationale", "correct"))
        if not isinstance(example["options"], list):
            raise TypeError(f"{who}: problem {index} of {path!r} has options "
                            f"{example['options']!r}; expected a list of strings.")

    def examples_of(example, rng):
        question = example["question"]
        steps = example["rationale"].split("\n")
        options = " ".join(example["options"])
        if cumulative:
            prefix, pairs = question, []
            for step in steps:
                pairs.append(("infer cumulative rationale: " + prefix, step))
                prefix += " " + step
            return pairs
        if rationale:
            return [("infer full rationale: " + question, example["rationale"])]
        if correct_answer:
            return [("infer correct answer: " + question + " " + options, example["correct"])]
        if correct_answer_given_reasoning:
            reasoning = example["rationale"]
            if partial_reasoning:
                reasoning = "\n".join(steps[:rng.integers(0, len(steps))])
            return [("infer correct answer given reasoning: " + question + " " + reasoning + " " + options,
                     example["correct"])]
        steps, target = _maybe_swap(steps, rng)
        return [("order prediction: " + question + " " + "\n".join(steps), target)]

    def aqua_yield_examples(generator=None):
        del generator
        rng = np.random.default_rng(seed)
        while True:
            yielded = False
            for example in dataset:
                for inputs, target in examples_of(example, rng):
                    yielded = True
                    yield inputs, target, _weights(target)
            if not yielded:
                raise _no_example_error(who, path, f"it has {len(dataset)} problems")

    return aqua_yield_examples
