"""`SubwordTextEncoder.encode_batch`: the subtoken ids of many texts at once, in NumPy.

Encoding one text in Python costs ~100 ns per token whatever the method (a
regex match or a slice makes a string per token; then a dict lookup), ~8 us
for a 115-character sentence. Here a block of texts is split into
tensor2tensor's tokens (runs of letters and digits, runs of other
characters, the lone spaces between words dropped) with NumPy on its code
points, each token is identified by a hash of its characters computed with
NumPy, and its subtoken ids are found in an open-addressing table of token
hashes, also with NumPy; only tokens not seen before (and the rare token
longer than `_MAX_HASHED_LENGTH` characters) are sliced out as strings and
encoded by the encoder itself.

The hash of a token of length ``n`` is ``sum(T[i, c_i] for i < n)`` mod 2**64
in two independent columns (128 bits), plus ``n``: tabulation hashing with a
table ``T`` of random 64-bit values per (position, character) drawn from
fresh entropy in each process (an ASCII character indexes ``T``; other code
points are mixed with secret keys by splitmix64). For two different tokens
of the same length the sums differ at a position where their characters do,
so they collide with probability 2**-128: a different token reading another
token's ids is out of reach (unlike a polynomial hash, whose collisions can
be written down). The ids are always those of `SubwordTextEncoder.encode`.

>>> from pax_trax.data.subword_text_encoder import SubwordTextEncoder
>>> encoder = SubwordTextEncoder.build_from_token_counts_at({"hi": 2, "there": 1}, 1)
>>> [ids.tolist() for ids in encoder.encode_batch(["hi there", "", b"hi"])]
[[2, 3], [], [2]]
"""

from __future__ import annotations

import numpy as np

# Tokens up to this long are hashed; longer ones are encoded one by one.
_MAX_HASHED_LENGTH = 64
_ASCII = 128
# The table of tokens holds at most this many (then it starts again: bounded memory).
_MAX_TOKENS = 2**16
_FIRST_SLOTS = 2**12  # slots of a new table (doubled when a quarter full)

_SPLITMIX_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_SPLITMIX_M1 = np.uint64(0xBF58476D1CE4E5B9)
_SPLITMIX_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x):
    """splitmix64's finalizer on a uint64 array (a bijection that mixes every bit)."""
    z = x + _SPLITMIX_GAMMA
    z = (z ^ (z >> np.uint64(30))) * _SPLITMIX_M1
    z = (z ^ (z >> np.uint64(27))) * _SPLITMIX_M2
    return z ^ (z >> np.uint64(31))


def _random_uint64(rng, shape):
    return np.frombuffer(rng.bytes(8 * int(np.prod(shape))), np.uint64).reshape(shape).copy()


class SubwordBlockEncoder:
    """Encodes lists of texts with `encode_token` (token -> tuple of subtoken ids) and
    `is_alnum` (a character -> whether it is a letter or digit), remembering up to
    `_MAX_TOKENS` tokens' ids in NumPy arrays.
    """

    def __init__(self, encode_token, is_alnum):
        self._encode_token = encode_token
        self._is_alnum = is_alnum
        self._ascii_alnum = np.array([is_alnum(chr(c)) for c in range(_ASCII)], bool)
        rng = np.random.default_rng()  # fresh entropy: the hash keys are secret
        self._ascii_values = _random_uint64(rng, (_MAX_HASHED_LENGTH * _ASCII, 2))
        self._char_keys = _random_uint64(rng, (2,))
        self._position_keys = _random_uint64(rng, (_MAX_HASHED_LENGTH, 2))
        self._clear()

    def _clear(self):
        self._full = False
        self._n_tokens = 0
        self._slots = np.full(_FIRST_SLOTS, -1, np.int64)  # -> token number, -1: empty
        capacity = _FIRST_SLOTS // 4 + 1  # (+1: index -1 is always readable)
        self._hashes = np.zeros((capacity, 2), np.uint64)
        self._lengths = np.zeros(capacity, np.int64)
        self._offsets = np.zeros(capacity, np.int64)
        self._counts = np.zeros(capacity, np.int64)
        self._flat_ids = np.zeros(1024, np.int64)
        self._n_flat = 0

    # ------------------------------------------------------------- encoding

    def encode(self, texts):
        """The int64 subtoken ids of each of `texts` (a list of str, or of bytes that are
        all ASCII), each its own array."""
        lengths = np.fromiter(map(len, texts), np.int64, len(texts))
        joined = (b"" if texts and type(texts[0]) is bytes else "").join(texts)
        n = len(joined)
        if n == 0:
            return [np.zeros(0, np.int64) for _ in texts]
        codes, alnum, high = self._classify(joined)
        text_ends = np.cumsum(lengths)
        text_starts = text_ends - lengths

        # Runs of letters and digits, and of other characters, never across texts.
        run_start = np.empty(n, bool)
        run_start[0] = True
        np.not_equal(alnum[1:], alnum[:-1], out=run_start[1:])
        run_start[text_starts[lengths > 0]] = True
        starts = np.flatnonzero(run_start)
        ends = np.empty_like(starts)
        ends[:-1] = starts[1:]
        ends[-1] = n
        run_lengths = ends - starts
        running_sums = self._running_sums(codes, high, starts, run_lengths, n)

        # A lone space is dropped unless it begins or ends its text (tensor2tensor).
        lone_space = (run_lengths == 1) & (codes.take(starts) == 32)
        if lone_space.any():
            text_start_at = np.zeros(n + 1, bool)
            text_start_at[text_starts] = True
            text_end_at = np.zeros(n + 1, bool)
            text_end_at[text_ends] = True
            keep = np.flatnonzero(~(lone_space & ~text_start_at.take(starts)
                                    & ~text_end_at.take(ends)))
            starts, ends, run_lengths = starts.take(keep), ends.take(keep), run_lengths.take(keep)
        with np.errstate(over="ignore"):  # (sums mod 2**64)
            hashes = running_sums.take(ends, axis=0) - running_sums.take(starts, axis=0)

        tokens = self._find(hashes, run_lengths)
        long_tokens = {}
        missing = np.flatnonzero(tokens < 0)
        if len(missing):
            tokens, long_tokens = self._add_missing(joined, starts, ends, hashes, run_lengths,
                                                    tokens, missing)
        ids, id_ends = self._gather_ids(tokens, long_tokens)
        if self._full:
            self._clear()
        # The tokens of text i are those that start before its end.
        text_id_ends = id_ends[np.searchsorted(starts, text_ends, side="left")].tolist()
        text_id_starts = [0, *text_id_ends[:-1]]
        return [ids[a:b].copy() for a, b in zip(text_id_starts, text_id_ends)]

    def _classify(self, joined):
        """Code points (uint8 or uint32), whether each is alphanumeric, and the positions
        of non-ASCII ones with their distinct values (None for ASCII text)."""
        if type(joined) is bytes:  # (ASCII)
            codes = np.frombuffer(joined, np.uint8)
            return codes, self._ascii_alnum.take(codes), None
        if joined.isascii():
            codes = np.frombuffer(joined.encode("ascii"), np.uint8)
            return codes, self._ascii_alnum.take(codes), None
        codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), np.uint32)
        where = np.flatnonzero(codes >= _ASCII)
        distinct, which = np.unique(codes[where], return_inverse=True)
        alnum = self._ascii_alnum.take(np.minimum(codes, _ASCII - 1))
        is_alnum = self._is_alnum
        alnum[where] = np.array([is_alnum(chr(c)) for c in distinct.tolist()], bool)[which]
        return codes, alnum, (where, distinct, which)

    def _running_sums(self, codes, high, starts, run_lengths, n):
        """The (n + 1, 2) uint64 running sums of the characters' hash values: a run's hash
        is the difference of the sums at its end and start (valid for runs up to
        `_MAX_HASHED_LENGTH` long; longer runs are not looked up by hash)."""
        # Each character's position in its run: a running sum of ones that drops back at
        # every run start.
        steps = np.ones(n, np.int64)
        steps[0] = 0
        steps[starts[1:]] = 1 - run_lengths[:-1]
        position = np.cumsum(steps)
        index = position * _ASCII
        index += codes if high is None else np.minimum(codes, _ASCII - 1)
        # (Characters past `_MAX_HASHED_LENGTH` in long runs read the last row: unused.)
        values = self._ascii_values.take(index, axis=0, mode="clip")
        with np.errstate(over="ignore"):
            if high is not None:
                where, distinct, which = high
                mixed = _splitmix64(distinct.astype(np.uint64)[:, None] ^ self._char_keys)
                np.minimum(position, _MAX_HASHED_LENGTH - 1, out=position)
                values[where] = _splitmix64(mixed[which] + self._position_keys[position[where]])
            running = np.empty((n + 1, 2), np.uint64)
            running[0] = 0
            np.cumsum(values, axis=0, out=running[1:])
        return running

    # ------------------------------------------------------- the token table

    def _slot_of(self, first_hashes):
        return (first_hashes >> np.uint64(40)).astype(np.int64) & (len(self._slots) - 1)

    def _find(self, hashes, run_lengths):
        """Token number of each run in the table; -1 where it is not (or is too long).

        Probes compare the first 64-bit hash; a token found is then checked on the
        second hash and its length (a run failing that is encoded on its own).
        """
        found = np.full(len(run_lengths), -1, np.int64)
        pending = np.flatnonzero(run_lengths <= _MAX_HASHED_LENGTH)
        if not self._n_tokens or not len(pending):
            return found
        first = hashes[:, 0].take(pending)
        slots = self._slot_of(first)
        mask = len(self._slots) - 1
        table_first = self._hashes[:, 0]
        while len(pending):
            token = self._slots.take(slots)
            match = table_first.take(token) == first
            done = match | (token < 0)
            found[pending[match]] = token[match]
            probe_on = ~done
            pending, first, slots = pending[probe_on], first[probe_on], (slots[probe_on] + 1) & mask
        hit = found >= 0
        checked = ((self._lengths.take(found) == run_lengths)
                   & (self._hashes[:, 1].take(found) == hashes[:, 1]))
        found[hit & ~checked] = -1
        return found

    def _add_missing(self, joined, starts, ends, hashes, run_lengths, tokens, missing):
        """Encodes the runs at `missing` one by one, adding the hashed ones to the table.
        Returns the runs' token numbers and ``{run: ids}`` of the runs encoded without
        the table (too long to hash, or met when the table is full: it is emptied once
        this block is done)."""
        long_tokens = {}
        added = {}
        for run in missing.tolist():
            text = joined[starts[run]:ends[run]]
            if type(text) is bytes:
                text = text.decode("ascii")
            token = added.get(text)
            if token is None:
                if run_lengths[run] > _MAX_HASHED_LENGTH or self._n_tokens >= _MAX_TOKENS:
                    self._full = self._n_tokens >= _MAX_TOKENS
                    long_tokens[run] = self._encode_token(text)
                    continue
                token = added[text] = self._insert(hashes[run], run_lengths[run],
                                                   self._encode_token(text))
            tokens[run] = token
        return tokens, long_tokens

    def _insert(self, hashes, length, ids):
        if 4 * (self._n_tokens + 1) > len(self._slots):
            self._grow()
        token = self._n_tokens
        self._n_tokens += 1
        self._hashes[token] = hashes
        self._lengths[token] = length
        self._counts[token] = len(ids)
        self._offsets[token] = self._n_flat
        while self._n_flat + len(ids) > len(self._flat_ids):
            self._flat_ids = np.concatenate([self._flat_ids, np.zeros_like(self._flat_ids)])
        self._flat_ids[self._n_flat:self._n_flat + len(ids)] = ids
        self._n_flat += len(ids)
        self._place(token)
        return token

    def _place(self, token):
        mask = len(self._slots) - 1
        slot = int(self._slot_of(self._hashes[token, :1])[0])
        while self._slots[slot] >= 0:
            slot = (slot + 1) & mask
        self._slots[slot] = token

    def _grow(self):
        n_slots = 2 * len(self._slots)
        self._slots = np.full(n_slots, -1, np.int64)
        capacity = n_slots // 4 + 1
        for name in ("_hashes", "_lengths", "_offsets", "_counts"):
            old = getattr(self, name)
            new = np.zeros((capacity, *old.shape[1:]), old.dtype)
            new[:len(old)] = old
            setattr(self, name, new)
        for token in range(self._n_tokens):
            self._place(token)

    def _gather_ids(self, tokens, long_tokens):
        """The concatenated ids of `tokens` and the end of each token's ids in them."""
        counts = self._counts[tokens]
        offsets = self._offsets[tokens]
        for run, ids in long_tokens.items():
            counts[run], offsets[run] = len(ids), 0
        id_ends = np.empty(len(tokens) + 1, np.int64)
        id_ends[0] = 0
        np.cumsum(counts, out=id_ends[1:])
        index = np.arange(id_ends[-1]) + np.repeat(offsets - id_ends[:-1], counts)
        ids = self._flat_ids.take(index, mode="clip")
        for run, run_ids in long_tokens.items():
            ids[id_ends[run]:id_ends[run + 1]] = run_ids
        return ids, id_ends
