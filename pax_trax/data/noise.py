"""Span-corruption (T5-style MLM) preprocessing (`trax.data.inputs`).

``MLM`` = `generate_sequential_chunks` -> `generate_random_noise_mask` ->
`consume_noise_mask`: token sequences are chunked, random noise spans are
chosen, and each noise span is replaced by a unique sentinel id
(``vocab_size - 1``, ``vocab_size - 2``, ...) in the inputs, while the targets
hold the sentinels followed by the tokens they replaced.

Randomness uses ``numpy.random.Generator``s built from explicit seeds, never
NumPy's global RNG (Trax called ``np.random.seed``).
"""

from __future__ import annotations

import math

import numpy as np

from pax_trax.data._checks import describe
from pax_trax.data.combinators import Serial


def random_spans_noise_mask(
    length, noise_density=0.15, mean_noise_span_length=3.0, seed1=None, seed2=None, example=None
):
    """Computes span corruption masks given input parameters.

    Returns a boolean mask of `length` with ``round(length * noise_density)``
    noise tokens (at least 1, at most ``length - 1``) grouped into
    ``round(noise_tokens / mean_noise_span_length)`` spans (at least 1). The
    mask starts with non-noise and noise spans never touch, so the mean noise
    span length is exact. A translation of T5's ``random_spans_noise_mask``.

    Args:
      length: number of tokens.
      noise_density: fraction of tokens that are noise.
      mean_noise_span_length: average length of a noise span.
      seed1: seed (int, ``SeedSequence`` or ``numpy.random.Generator``) for the
        noise span lengths; None draws fresh entropy.
      seed2: the same for the non-noise span lengths.
      example: unused; accepted for debugging hooks, as in Trax.

    >>> mask = random_spans_noise_mask(20, 0.25, 2.5, seed1=0, seed2=1)
    >>> int(mask.sum()), mask.shape, bool(mask[0])
    (5, (20,), False)
    """
    del example
    if not 0 < noise_density < 1:
        raise ValueError(f"random_spans_noise_mask: expected 0 < noise_density < 1, got {noise_density}.")
    if mean_noise_span_length <= 0:
        raise ValueError(
            f"random_spans_noise_mask: expected mean_noise_span_length > 0, got {mean_noise_span_length}."
        )
    orig_length = length
    length = max(length, 2)  # avoid degeneracy
    num_noise_tokens = int(round(length * noise_density))
    # At least one noise and one non-noise token.
    num_noise_tokens = min(max(num_noise_tokens, 1), length - 1)
    num_noise_spans = max(int(round(num_noise_tokens / mean_noise_span_length)), 1)
    num_nonnoise_tokens = length - num_noise_tokens
    # More spans than tokens cannot be segmented (T5 relies on lengths > spans).
    num_noise_spans = min(num_noise_spans, num_noise_tokens, num_nonnoise_tokens)

    noise_span_lengths = _randomly_segment(num_noise_tokens, num_noise_spans, np.random.default_rng(seed1))
    nonnoise_span_lengths = _randomly_segment(
        num_nonnoise_tokens, num_noise_spans, np.random.default_rng(seed2)
    )
    interleaved_span_lengths = np.stack([nonnoise_span_lengths, noise_span_lengths], axis=1).reshape(-1)
    span_starts = np.cumsum(interleaved_span_lengths)[:-1]
    span_start_indicator = np.zeros(length, np.int32)
    span_start_indicator[span_starts] = 1
    span_num = np.cumsum(span_start_indicator)
    is_noise = span_num % 2 == 1
    return is_noise[:orig_length]


def _randomly_segment(num_items, num_segments, rng):
    """Random lengths (each >= 1) of `num_segments` segments summing to `num_items`."""
    # Mark num_segments - 1 of the num_items - 1 gaps as segment starts.
    first_in_segment = rng.permutation(np.arange(num_items - 1) < num_segments - 1)
    first_in_segment = np.concatenate([[False], first_in_segment])
    segment_id = np.cumsum(first_in_segment)
    return np.bincount(segment_id, minlength=num_segments)


def generate_random_noise_mask(noise_density=0.15, mean_noise_span_length=3.0, seed1=None, seed2=None):
    """Returns a function that generates a random noise mask.

    Each token sequence ``x`` becomes ``(x, noise_mask)`` (see
    `random_spans_noise_mask`). The seeds are turned into generators when a
    stream starts, so with int seeds every stream is the same reproducible
    sequence of (different) masks. (Trax reseeded NumPy's global RNG on every
    example, giving the same mask to every example of a given length.)

    >>> x, mask = next(generate_random_noise_mask(0.2, 2.0, seed1=0, seed2=0)(iter([np.arange(10)])))
    >>> int(mask.sum())
    2
    """

    def _f(generator):
        rng1, rng2 = np.random.default_rng(seed1), np.random.default_rng(seed2)
        for example in generator:
            try:
                length = len(example)
            except TypeError:
                raise ValueError(
                    f"generate_random_noise_mask: expected a token sequence, got {describe(example)}."
                ) from None
            noise_mask = random_spans_noise_mask(
                length,
                noise_density=noise_density,
                mean_noise_span_length=mean_noise_span_length,
                seed1=rng1,
                seed2=rng2,
                example=example,
            )
            yield (example, noise_mask)

    return _f


def consume_noise_mask(vocab_size=32100):
    """Consumes (tokens, noise mask) and returns (inputs, targets).

    Inputs keep the non-noise tokens with each noise span replaced by one
    sentinel (``vocab_size - 1`` for the first span, then ``vocab_size - 2``,
    ...); targets are the complement: each non-noise span replaced by a
    sentinel, noise tokens kept.

    >>> tokens = np.array([1, 2, 3, 4, 5])
    >>> mask = np.array([False, True, True, False, False])
    >>> inputs, targets = next(consume_noise_mask(vocab_size=100)(iter([(tokens, mask)])))
    >>> inputs.tolist(), targets.tolist()
    ([1, 99, 4, 5], [99, 2, 3, 98])
    """

    def _noise_span_to_unique_sentinel(tokens, noise_mask):
        prev_token_is_noise = np.pad(noise_mask[:-1], [1, 0], mode="constant", constant_values=False)
        first_noise_tokens = np.logical_and(noise_mask, np.logical_not(prev_token_is_noise))
        subsequent_noise_tokens = np.logical_and(noise_mask, prev_token_is_noise)
        sentinel = vocab_size - np.cumsum(first_noise_tokens)
        tokens = np.where(first_noise_tokens, sentinel, tokens)
        return tokens[np.logical_not(subsequent_noise_tokens)]

    def _f(generator):
        for example in generator:
            if not isinstance(example, (tuple, list)) or len(example) != 2:
                raise ValueError(
                    f"consume_noise_mask: expected (tokens, noise_mask), got {describe(example)}."
                )
            tokens, noise_mask = np.asarray(example[0]), np.asarray(example[1], dtype=bool)
            if tokens.ndim != 1 or tokens.shape != noise_mask.shape:
                raise ValueError(
                    "consume_noise_mask: expected 1-D tokens and a noise mask of the same shape, "
                    f"got {describe(example)}."
                )
            yield (
                _noise_span_to_unique_sentinel(tokens, noise_mask),
                _noise_span_to_unique_sentinel(tokens, np.logical_not(noise_mask)),
            )

    return _f


def generate_sequential_chunks(max_length=None):
    """Returns a function that generates chunks of at most max_length length.

    A sequence is cut into consecutive pieces of `max_length` (the last may be
    shorter); a sequence that fits is passed once, unchanged (Trax also
    yielded it a second time). ``max_length=None`` passes sequences unchanged.

    >>> [c.tolist() for c in generate_sequential_chunks(2)(iter([np.arange(5)]))]
    [[0, 1], [2, 3], [4]]
    """
    if max_length is not None and max_length < 1:
        raise ValueError(f"generate_sequential_chunks: expected max_length >= 1, got {max_length}.")

    def _f(generator):
        for example in generator:
            try:
                n_tokens = len(example)
            except TypeError:
                raise ValueError(
                    f"generate_sequential_chunks: expected a token sequence, got {describe(example)}."
                ) from None
            if max_length is None or n_tokens <= max_length:
                yield example
                continue
            for i in range(int(math.ceil(n_tokens / max_length))):
                start = max_length * i
                yield example[start : min(start + max_length, n_tokens)]

    return _f


def MLM(  # noqa: N802 (Trax name)
    vocab_size=None, max_length=None, noise_density=0.15, mean_noise_span_length=3.0, seed=None
):
    """Pipeline that just does MLM (T5 span corruption).

    Args:
      vocab_size: size of the vocabulary; sentinels are its top ids.
      max_length: chunk length for `generate_sequential_chunks`.
      noise_density: fraction of tokens masked.
      mean_noise_span_length: mean length of a masked span.
      seed: pax_trax addition: an int makes every stream reproducible; None
        draws fresh entropy.

    >>> inputs, targets = next(MLM(vocab_size=100, max_length=10, seed=0)(iter([np.arange(1, 11)])))
    >>> sorted(set(inputs.tolist() + targets.tolist()) - set(range(100)))
    []
    """
    if vocab_size is None:
        raise ValueError("MLM: expected a vocab_size (sentinel ids are its top ids), got None.")
    if seed is None:
        seed1 = seed2 = None
    else:
        # Two independent, reproducible streams for noise and non-noise spans.
        seed1, seed2 = np.random.SeedSequence(seed).spawn(2)
    return Serial(
        generate_sequential_chunks(max_length=max_length),
        generate_random_noise_mask(
            noise_density=noise_density,
            mean_noise_span_length=mean_noise_span_length,
            seed1=seed1,
            seed2=seed2,
        ),
        consume_noise_mask(vocab_size=vocab_size),
    )
