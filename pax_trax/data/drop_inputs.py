"""DROP inputs: Trax's ``CreateDropInputs`` (TFDS's ``'drop'`` dataset) and
``CreateAnnotatedDropInputs`` (DROP questions annotated with MathQA-style
calculations, from JSON files). See `pax_trax.data.mathqa`, which re-exports
both, for the programs' language and the differences from Trax.

>>> _is_plain_number('3.13'), _is_plain_number('3.1.3'), _is_plain_number('\u00b2')
(True, False, False)
"""

from __future__ import annotations

import numpy as np

from pax_trax.data import _lazy
from pax_trax.data._dataset_files import (
    _dataset_path,
    _join,
    _json_lines,
    _list_json_files,
    _no_example_error,
    _read_text,
    _weights,
)
from pax_trax.data._mathqa_programs import (
    _NUMBER,
    _P,
    _check_example,
    convert_float_to_mathqa,
    convert_to_subtract,
)

__all__ = ["CreateDropInputs", "CreateAnnotatedDropInputs"]


def _is_plain_number(text):
    # (ASCII only: str.isdigit also accepts '²', which is no number to convert)
    return text.isascii() and text.replace(".", "", 1).isdigit()


def CreateDropInputs(train=True, mathqa_format=False, *, data_dir=None, download=True):  # noqa: N802 (Trax name)
    """A stream of DROP examples ``(input, target, weights)`` from TFDS's ``'drop'`` dataset.

    Input ``'drop question: ' + passage + ' ' + question``, target the
    answer; examples with an empty answer are skipped (as Trax).

    Args:
      train: the ``'train'`` split if True, else ``'dev'``.
      mathqa_format: numeric answers (``'40'``, ``'3.13'``) as MathQA programs,
        ``'subtract(const_3_13,const_0)'`` (`convert_float_to_mathqa`; Trax
        turned ``'40'`` into ``'subtract(const_40_,const_0)'``).
      data_dir: pax_trax addition (keyword-only): the TFDS data directory
        (None: ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
      download: pax_trax addition (keyword-only): whether DROP may be
        downloaded and prepared if it is not prepared in `data_dir` (as
        `pax_trax.data.TFDS`); with False that is an error.

    Returns:
      A stream function ``f(generator=None)``: an endless iterator of
      ``(input_text, target_text, weights)`` (int32 ones, one per target
      character, as Trax).

    >>> stream = CreateDropInputs(train=False, mathqa_format=True, download=False)  # doctest: +SKIP
    >>> next(stream())[1]  # doctest: +SKIP
    'subtract(const_40,const_0)'
    """
    who = _P + "CreateDropInputs"
    from pax_trax.data.tfds_prepare import _prepared_builder

    _, data_dir = _prepared_builder("drop", data_dir, download, who)
    tfds = _lazy.tensorflow_datasets(who)
    split = "train" if train else "dev"
    dataset = tfds.as_numpy(tfds.load("drop", split=split, data_dir=data_dir, download=False))

    def drop_yield_examples(generator=None):
        del generator
        while True:
            yielded = False
            for example in dataset:
                target = example["answer"].decode("utf-8")
                if not target:
                    continue  # an empty target would tokenize to a float array (Trax)
                if mathqa_format and _is_plain_number(target):
                    target = convert_to_subtract(convert_float_to_mathqa(target))
                inputs = ("drop question: " + example["passage"].decode("utf-8") + " "
                          + example["question"].decode("utf-8"))
                yielded = True
                yield inputs, target, _weights(target, np.int32)
            if not yielded:
                raise _no_example_error(who, f"{data_dir}/drop ({split})", "every answer is empty")

    return drop_yield_examples


def CreateAnnotatedDropInputs(  # noqa: N802 (Trax name)
    dataset_path=None,
    train=True,
    single_file=True,
    unique=False,
    total_number_of_samples=None,
    percentile=1.0,
):
    """A stream of annotated DROP examples ``(input, target, weights)``.

    Each example is a JSON object a line, with ``passage``, ``question`` and
    ``calculation`` (a MathQA-style program such as ``'subtract(n8,n9)'``:
    the answer from the 9th and 10th numbers of passage and question), or
    with ``input`` (an already made input ``'<prompt>: <text>'``, whose prompt
    is replaced) and ``calculation``. Input ``'drop annotated question: '`` +
    passage + ``' '`` + question + ``' n0 = 1963.0 n1 = ...'`` (the numbers
    of passage and question), target the calculation. The files are read
    again on each pass, so that examples added meanwhile are used (Trax's
    "DAgger" loop).

    Args:
      dataset_path: the directory of ``train_annotated.json`` and
        ``dev_annotated.json``; for training with ``single_file=False``, a
        directory whose files with ``json`` in their names (read in sorted
        order) hold the examples.
      train: training data if True, else ``dev_annotated.json``.
      single_file: see `dataset_path` (only for training data).
      unique: at most one question per passage (in each pass).
      total_number_of_samples: if a positive int, a pass ends after this many
        distinct ``(input, target)`` pairs.
      percentile: the fraction of the examples (the first ones) to use.

    Returns:
      A stream function ``f(generator=None)``: an endless iterator of
      ``(input_text, target_text, weights)`` (int32 ones, one per target
      character).

    >>> import json, os, tempfile
    >>> example = {'passage': 'The hall was built in 1954, sold in 1994.',
    ...            'question': 'How many years later?',
    ...            'answer': 40, 'calculation': 'subtract(n1,n0)'}
    >>> tmp = tempfile.TemporaryDirectory()
    >>> directory = tmp.name
    >>> with open(os.path.join(directory, 'train_annotated.json'), 'w') as f:
    ...     _ = f.write(json.dumps(example) + '\\n')
    >>> inputs, target, weights = next(CreateAnnotatedDropInputs(directory)())
    >>> print(inputs)
    drop annotated question: The hall was built in 1954, sold in 1994. How many years later? n0 = 1954.0 n1 = 1994.0
    >>> target, weights.dtype
    ('subtract(n1,n0)', dtype('int32'))
    >>> tmp.cleanup()
    """
    who = _P + "CreateAnnotatedDropInputs"
    directory = _dataset_path(dataset_path, who)
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or not 0 < percentile <= 1:
        raise ValueError(f"{who}: percentile must be a fraction in (0, 1], got {percentile!r}.")
    if total_number_of_samples is not None and (
            isinstance(total_number_of_samples, bool) or not isinstance(total_number_of_samples, int)
            or total_number_of_samples < 0):
        raise ValueError(f"{who}: total_number_of_samples must be None or an int >= 0, got "
                         f"{total_number_of_samples!r}.")
    from_directory = train and not single_file
    if from_directory:
        source = directory
    else:
        source = _join(directory, "train_annotated.json" if train else "dev_annotated.json")

    def load_dataset():
        paths = _list_json_files(source, who) if from_directory else [source]
        dataset = []
        for path in paths:
            text = _read_text(path, who, "annotated DROP: one JSON example a line")
            for example in _json_lines(text, path, who):
                keys = ("input", "calculation") if isinstance(example, dict) and "input" in example else (
                    "passage", "question", "calculation")
                _check_example(example, keys, who, f"an example of {path!r}", text_keys=keys)
                dataset.append(example)
        return dataset[:int(len(dataset) * percentile)]

    load_dataset()  # (a missing file or a malformed example is an error now, not at the first next())

    def drop_annotated_yield_examples(generator=None):
        del generator
        while True:
            passages, distinct = set(), set()
            dataset = load_dataset()
            for example in dataset:
                if total_number_of_samples and len(distinct) >= total_number_of_samples:
                    break
                if "input" in example:
                    question = example["input"]
                    question = question[question.find(":") + 2:]  # drops the old prompt
                else:
                    if unique and example["passage"] in passages:
                        continue
                    passages.add(example["passage"])
                    question = example["passage"] + " " + example["question"]
                    numbers = [float(num.replace(",", "").strip(".")) for num in _NUMBER.findall(question)]
                    question += "".join(f" n{i} = {num}" for i, num in enumerate(numbers))
                inputs = "drop annotated question: " + question
                target = example["calculation"]
                distinct.add((inputs, target))
                yield inputs, target, _weights(target, np.int32)
            if not distinct:
                raise _no_example_error(who, source, f"it holds {len(dataset)} example(s) after "
                                        f"percentile={percentile}")

    return drop_annotated_yield_examples
