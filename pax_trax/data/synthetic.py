"""Synthetic inputs for debugging and toy tasks (`trax.data.inputs`).

Copy, addition and sine-wave problems, and random data. Every generator takes
a ``seed`` (pax_trax addition: an int for reproducible streams, None for
fresh entropy); NumPy's global RNG is never used.
"""

from __future__ import annotations

import math

import numpy as np

from pax_trax.data.batcher import Inputs
from pax_trax.data.batching import pad_to_max_dims


def _stream_rng(seed, stream_id):
    """A generator for one stream: distinct, reproducible streams from one int seed."""
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng([int(seed), stream_id])


def _rng(rng):
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def lower_endian_to_number(l, base):  # noqa: E741 (Trax's signature)
    """Helper function: convert a list of digits in the given base to a number.

    >>> lower_endian_to_number([3, 2, 1], 10)
    123
    """
    return sum(int(d) * (base**i) for i, d in enumerate(l))


def number_to_lower_endian(n, base):
    """Helper function: convert a number to a list of digits in the given base.

    >>> number_to_lower_endian(123, 10)
    [3, 2, 1]
    """
    if n < 0 or base < 2:
        raise ValueError(f"number_to_lower_endian: expected n >= 0 and base >= 2, got n={n}, base={base}.")
    digits = [n % base]
    n //= base
    while n:
        digits.append(n % base)
        n //= base
    return digits


def random_number_lower_endian(length, base, rng=None):
    """Helper function: generate a random number as a lower-endian digits list.

    The last (most significant) digit is non-zero unless `length` is 1.
    `rng` (pax_trax addition) is a seed or ``numpy.random.Generator``.

    >>> digits = random_number_lower_endian(4, 10, rng=0)
    >>> len(digits), digits[-1] != 0
    (4, True)
    """
    if length < 1 or base < 2:
        raise ValueError(
            f"random_number_lower_endian: expected length >= 1 and base >= 2, got {length}, {base}."
        )
    rng = _rng(rng)
    if length == 1:  # Last digit can be 0 only if length is 1.
        return [int(rng.integers(base))]
    prefix = [int(d) for d in rng.integers(base, size=length - 1)]
    return prefix + [int(rng.integers(base - 1)) + 1]


def addition_input_stream(
    vocab_size, batch_size, min_length, max_length, pad_to_multiple=32, encdec=False, seed=None
):
    """Data stream for the add problem: <S>x+y<S>(x+y).

    Numbers are lower-endian digit lists in base ``vocab_size - 3``; digit
    ``d`` is token ``d + 1``, ``+`` is ``base + 1``, ``<S>`` is ``base + 2``
    and 0 is padding. Decoder-only examples are ``(x, x, weights)`` with
    ``x = <S> a + b <S> (a+b)`` and weights on the sum only; with `encdec`,
    ``(a + b, a+b, ones)``. Batches are zero-padded to a multiple of
    `pad_to_multiple`.

    Args:
      vocab_size: how many symbols to use (at least 5).
      batch_size: how large are the batches.
      min_length: minimal length of w (at least 3).
      max_length: maximal length of w (at least 3).
      pad_to_multiple: int, pad length to be multiple of this number.
      encdec: bool, if True return encoder-decoder style inputs.
      seed: pax_trax addition, see module docstring.

    Returns:
      Python generator of batches ``(x, y, weights)``.

    >>> x, y, w = next(addition_input_stream(13, 2, 3, 6, pad_to_multiple=8, seed=0))
    >>> x.shape[0], x.shape[1] % 8, bool((x == y).all())
    (2, 0, True)
    """
    base = vocab_size - 3  # 0 pads, base+1 is "+", base+2 is "<S>"
    if base < 2:
        raise ValueError(f"addition_input_stream: expected vocab_size >= 5, got {vocab_size}.")
    if max_length < 3 or min_length < 3:
        raise ValueError(
            f"addition_input_stream: maximum/minimum length must be at least 3, got "
            f"min_length={min_length}, max_length={max_length}."
        )
    if min_length > max_length:
        raise ValueError(
            f"addition_input_stream: expected min_length <= max_length, got {min_length} > {max_length}."
        )
    return _addition_batches(base, batch_size, min_length, max_length, pad_to_multiple, encdec, _rng(seed))


def _addition_example(base, min_length, max_length, encdec, rng):
    while True:  # encdec examples that come out too long are drawn again
        add_len = (min_length - 1) // 2
        l1 = int(rng.integers((max_length - add_len + 1) // 2)) + add_len
        l2 = int(rng.integers(max_length - l1 - 1)) + 1
        n1 = random_number_lower_endian(l1, base, rng)
        n2 = random_number_lower_endian(l2, base, rng)
        total = lower_endian_to_number(n1, base) + lower_endian_to_number(n2, base)
        inp = n1 + [base] + n2
        tgt = number_to_lower_endian(total, base)
        if encdec:
            x = [i + 1 for i in inp]
            y = [i + 1 for i in tgt]
            if len(x) > max_length or len(y) > max_length:
                continue
            return (np.array(x, np.int32), np.array(y, np.int32), np.ones(len(tgt), np.float32))
        x = [base + 2] + [i + 1 for i in inp] + [base + 2] + [i + 1 for i in tgt]
        weights = [0.0] * (len(inp) + 2) + [1.0] * len(tgt)
        x = np.array(x, np.int32)
        return (x, x, np.array(weights, np.float32))


def _addition_batches(base, batch_size, min_length, max_length, pad_to_multiple, encdec, rng):
    while True:
        examples = [_addition_example(base, min_length, max_length, encdec, rng) for _ in range(batch_size)]
        yield tuple(
            pad_to_max_dims(list(column), boundary=pad_to_multiple, strict_pad_on_len=True)
            for column in zip(*examples)
        )


def _pad_to_multiple_of(x, y, axis):
    """Pads x with zeros to a multiple of y on the given axis."""
    pad_widths = [(0, 0)] * x.ndim
    pad_widths[axis] = (0, -x.shape[axis] % y)
    return np.pad(x, pad_widths, mode="constant", constant_values=x.dtype.type(0))


def random_inputs(
    input_shape=None,
    input_dtype=np.int32,
    input_range=(0, 255),
    output_shape=None,
    output_dtype=np.int32,
    output_range=(0, 9),
    seed=None,
):
    """Make random Inputs for debugging.

    Args:
      input_shape: the shape of inputs (including batch dimension).
      input_dtype: the type of the inputs (int32 by default).
      input_range: the range of inputs, inclusive (defaults to (0, 255)).
      output_shape: the shape of outputs (including batch dimension).
      output_dtype: the type of the outputs (int32 by default).
      output_range: the range of outputs, inclusive (defaults to (0, 9)).
      seed: pax_trax addition, see module docstring.

    Returns:
      An `Inputs` whose streams yield ``(inputs, outputs)`` forever.

    >>> inputs = random_inputs((4, 3), output_shape=(4,), seed=0)
    >>> inputs.input_shape, inputs.target_shape
    ((3,), ())
    """
    if input_shape is None or output_shape is None:
        raise ValueError(
            f"random_inputs: expected input_shape and output_shape, got {input_shape} and {output_shape}."
        )
    input_shape, output_shape = tuple(input_shape), tuple(output_shape)

    def sample(rng, value_range, shape, dtype):
        if np.issubdtype(np.dtype(dtype), np.floating):
            return rng.uniform(value_range[0], value_range[1], shape).astype(dtype)
        return rng.integers(value_range[0], value_range[1], shape, endpoint=True).astype(dtype)

    def random_minibatches(n_devices):
        # Trax checked input_range[0] % n_devices; the batch axis is what must split.
        if not input_shape or input_shape[0] % n_devices:
            raise ValueError(
                f"random_inputs: expected the batch size input_shape[0] to be divisible by "
                f"n_devices={n_devices}, got input_shape={input_shape}."
            )
        rng = _stream_rng(seed, 0)
        while True:
            yield (
                sample(rng, input_range, input_shape, input_dtype),
                sample(rng, output_range, output_shape, output_dtype),
            )

    return Inputs(random_minibatches)


def sequence_copy_inputs(
    vocab_size,
    batch_size,
    train_length,
    eval_min_length,
    eval_max_length,
    reverse=False,
    pad_to_multiple=32,
    seed=None,
):
    """Inputs for the sequence copy problem: 0w0w for w in [1..vocab_size-1]*.

    Batches are ``(x, x, loss_weights)`` with ``x = 0 w 0 w`` (the second
    ``w`` reversed with `reverse`), ``w`` drawn from ``[1, vocab_size - 2]``
    as in Trax, and weights 1 on the second ``w`` only; zero-padded to a
    multiple of `pad_to_multiple`.

    Args:
      vocab_size: how many symbols to use.
      batch_size: how large are the batches.
      train_length: maximum length of w for training.
      eval_min_length: minimum length of w for eval.
      eval_max_length: maximum length of w for eval.
      reverse: bool: reverse the second sequence.
      pad_to_multiple: int, pad length to be multiple of this number.
      seed: pax_trax addition, see module docstring.

    Returns:
      An `Inputs`.

    >>> x, _, w = next(sequence_copy_inputs(5, 2, 3, 2, 3, pad_to_multiple=4, seed=0).train_stream(1))
    >>> x.shape[1] % 4, int(x[0, 0])
    (0, 0)
    """
    if vocab_size < 3:
        raise ValueError(f"sequence_copy_inputs: expected vocab_size >= 3, got {vocab_size}.")

    def random_minibatches(length_list, rng):
        while True:
            length = int(rng.choice(length_list))
            w_length = (length // 2) - 1
            w = rng.integers(1, vocab_size - 1, size=(batch_size, w_length)).astype(np.int32)
            zero = np.zeros([batch_size, 1], np.int32)
            loss_weights = np.concatenate(
                [
                    np.zeros((batch_size, w_length + 2), np.float32),
                    np.ones((batch_size, w_length), np.float32),
                ],
                axis=1,
            )
            second = np.flip(w, axis=1) if reverse else w
            x = np.concatenate([zero, w, zero, second], axis=1)
            x = _pad_to_multiple_of(x, pad_to_multiple, 1)
            loss_weights = _pad_to_multiple_of(loss_weights, pad_to_multiple, 1)
            yield (x, x, loss_weights)  # Here inputs and targets are the same.

    train_lengths = [2 * (i + 2) for i in range(train_length - 1)]
    eval_lengths = [2 * (i + 1) for i in range(eval_min_length, eval_max_length)]
    if not train_lengths or not eval_lengths:
        raise ValueError(
            "sequence_copy_inputs: expected train_length >= 2 and eval_min_length < eval_max_length, "
            f"got {train_length}, {eval_min_length}, {eval_max_length}."
        )
    return Inputs(
        train_stream=lambda _: random_minibatches(train_lengths, _stream_rng(seed, 0)),
        eval_stream=lambda _: random_minibatches(eval_lengths, _stream_rng(seed, 1)),
    )


def simple_sequence_copy_inputs(
    vocab_size,
    batch_size,
    train_length,
    eval_min_length,
    eval_max_length,
    pad_to_multiple=32,
    seed=None,
):
    """Inputs for the sequence copy problem: w for w in [1..vocab_size-1]*.

    Batches are ``(x, x, loss_weights)`` with ``x = w`` (values in
    ``[1, vocab_size - 2]`` as in Trax), weights 1 on ``w``, 0 on padding.

    Args:
      vocab_size: how many symbols to use.
      batch_size: how large are the batches.
      train_length: maximum length of w for training.
      eval_min_length: minimum length of w for eval.
      eval_max_length: maximum length of w for eval.
      pad_to_multiple: int, pad length to be multiple of this number.
      seed: pax_trax addition, see module docstring.

    Returns:
      An `Inputs`.

    >>> x, y, w = next(simple_sequence_copy_inputs(5, 2, 3, 1, 3, pad_to_multiple=4, seed=0).train_stream(1))
    >>> x.shape, bool((x == y).all())
    ((2, 4), True)
    """
    if vocab_size < 3:
        raise ValueError(f"simple_sequence_copy_inputs: expected vocab_size >= 3, got {vocab_size}.")

    def random_minibatches(length_list, rng):
        while True:
            length = int(rng.choice(length_list))
            x = rng.integers(1, vocab_size - 1, size=(batch_size, length)).astype(np.int32)
            loss_weights = np.ones((batch_size, length), np.float32)
            x = _pad_to_multiple_of(x, pad_to_multiple, 1)
            loss_weights = _pad_to_multiple_of(loss_weights, pad_to_multiple, 1)
            yield (x, x, loss_weights)  # Here inputs and targets are the same.

    train_lengths = list(range(1, train_length + 1))
    eval_lengths = list(range(eval_min_length, eval_max_length + 1))
    if not train_lengths or not eval_lengths or eval_min_length < 1:
        raise ValueError(
            "simple_sequence_copy_inputs: expected train_length >= 1 and "
            f"1 <= eval_min_length <= eval_max_length, got {train_length}, {eval_min_length}, "
            f"{eval_max_length}."
        )
    return Inputs(
        train_stream=lambda _: random_minibatches(train_lengths, _stream_rng(seed, 0)),
        eval_stream=lambda _: random_minibatches(eval_lengths, _stream_rng(seed, 1)),
    )


def addition_inputs(
    vocab_size,
    batch_size,
    train_length,
    eval_min_length,
    eval_max_length,
    pad_to_multiple=32,
    encdec=False,
    seed=None,
):
    """Inputs for the add problem: <S>x+y<S>(x+y); see `addition_input_stream`.

    Args:
      vocab_size: how many symbols to use.
      batch_size: how large are the batches.
      train_length: maximal length of w for training.
      eval_min_length: minimal length of w for eval.
      eval_max_length: maximal length of w for eval.
      pad_to_multiple: int, pad length to be multiple of this number.
      encdec: bool, if True return encoder-decoder style inputs.
      seed: pax_trax addition, see module docstring.

    Returns:
      An `Inputs` (each stream function continues one stream).

    >>> inputs = addition_inputs(13, 2, 8, 8, 8, pad_to_multiple=16, encdec=True, seed=0)
    >>> [x.shape for x in next(inputs.eval_stream(1))]
    [(2, 16), (2, 16), (2, 16)]
    """
    train_rng, eval_rng = (None, None) if seed is None else np.random.SeedSequence(seed).spawn(2)
    train_stream = addition_input_stream(
        vocab_size, batch_size, 3, train_length, pad_to_multiple, encdec, seed=train_rng
    )
    eval_stream = addition_input_stream(
        vocab_size, batch_size, eval_min_length, eval_max_length, pad_to_multiple, encdec, seed=eval_rng
    )
    return Inputs(train_stream=lambda _: train_stream, eval_stream=lambda _: eval_stream)


def sine_inputs(batch_size, length, max_phase=2 * math.pi, min_period=0.1, max_period=10.0, seed=None):
    """Sinusoids of random period and phase.

    Batches are ``(obs, act, obs, mask)``: float32 ``sin((t - phase) /
    period)`` for ``t = 0..length-1``, with phase uniform in
    ``[0, max_phase]`` and period log-uniform in ``[min_period, max_period]``;
    int32 zero actions; float32 ones mask.

    Args:
      batch_size (int): Number of examples in a batch.
      length (int): Length of each sequence.
      max_phase (float): Maximum phase of the sinusoids.
      min_period (float): Minimum period of the sinusoids.
      max_period (float): Maximum period of the sinusoids.
      seed: pax_trax addition, see module docstring.

    Returns:
      An `Inputs`.

    >>> [x.shape for x in next(sine_inputs(batch_size=3, length=5, seed=0).train_stream(1))]
    [(3, 5), (3, 5), (3, 5), (3, 5)]
    """
    if not 0 < min_period <= max_period:
        raise ValueError(
            f"sine_inputs: expected 0 < min_period <= max_period, got {min_period}, {max_period}."
        )

    def random_minibatches(stream_id):
        rng = _stream_rng(seed, stream_id)
        t = np.arange(length)
        while True:
            phase = rng.uniform(0, max_phase, size=(batch_size, 1))
            period = np.exp(rng.uniform(np.log(min_period), np.log(max_period), size=(batch_size, 1)))
            obs = np.sin((t - phase) / period).astype(np.float32)
            act = np.zeros_like(obs, dtype=np.int32)
            mask = np.ones_like(obs)
            yield (obs, act, obs, mask)

    return Inputs(train_stream=lambda _: random_minibatches(0), eval_stream=lambda _: random_minibatches(1))
