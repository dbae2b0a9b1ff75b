"""`SubwordTextEncoder.encode_batch`: the subtoken ids of many texts at once, in NumPy.

Encoding one text in Python costs ~100 ns per token whatever the method (a
regex match or a slice makes a string per token; then a dict lookup), ~8 us
for a 115-character sentence. Here a block of texts is split into
tensor2tensor's tokens (runs of letters and digits, runs of other
characters, the lone spaces between words dropped) with NumPy, each token
gets an exact key, and its subtoken ids are found in an open-addressing
table of keys, also with NumPy; only tokens not seen before (and the rare
token without a key) are sliced out as strings and encoded by the encoder
itself. The ids are always those of `SubwordTextEncoder.encode`.

Every character is one byte, its "unit": an ASCII character is its own code,
and the first 128 other code points met (since the table was last emptied)
get the units 128..255. A token of up to 8 units, read as a little-endian
64-bit word (zero-padded), is its key: as no unit of a keyed token is 0, the
word is the token itself, its length included (exact, nothing to check). A
token of 9 to `_MAX_KEYED_LENGTH` (16) units is two such words, which the
table stores with its ids; its key is a multiply-add hash of them (random
odd factors) with a low byte of 0, which no shorter token's key has, and a
key found is then checked against both words. So a key found is always its
token's: two tokens whose keys collide only cost time (the second is encoded
on its own), never wrong ids. A token that is longer, or holds a NUL or a
character without a unit, has no key (0) and is encoded one by one.

>>> from pax_trax.data.subword_text_encoder import SubwordTextEncoder
>>> encoder = SubwordTextEncoder.build_from_token_counts_at({"hi": 2, "there": 1}, 1)
>>> [ids.tolist() for ids in encoder.encode_batch(["hi there", "", b"hi"])]
[[2, 3], [], [2]]
"""

from __future__ import annotations

import itertools

import numpy as np

# Tokens up to this many units have a key (two words); longer ones are encoded one by one.
_MAX_KEYED_LENGTH = 16
_ASCII = 128
# The table of tokens holds at most this many (then it starts again: bounded memory).
_MAX_TOKENS = 2**16
_FIRST_SLOTS = 2**12  # slots of a new table (doubled when a quarter full: short probes)

_WORD = np.dtype("<u8")  # (units read as little-endian words: the first unit is the low byte)
_MASKS = np.array([(1 << 8 * i) - 1 for i in range(9)], np.uint64)  # the low i units
# The key of a token of two words: a hash with the low byte 0 and bit 8 set (never 0,
# never a shorter token's key, whose low byte is its first unit).
_TWO_WORD_BITS = np.uint64(2**64 - 0x200)
_TWO_WORD_TAG = np.uint64(0x100)


class _CodeUnits(dict):
    """Non-ASCII code point -> 2 * its unit (128..255 for the first 128 met, then 0: none)
    + whether it is alphanumeric."""

    def __init__(self, is_alnum):
        super().__init__()
        self._is_alnum = is_alnum
        self._n_units = 0

    def __missing__(self, code):
        unit = 0
        if self._n_units < _ASCII:
            unit, self._n_units = _ASCII + self._n_units, self._n_units + 1
        value = 2 * unit + bool(self._is_alnum(chr(code)))
        if unit or len(self) < _MAX_TOKENS:  # (bounded memory)
            self[code] = value
        return value


class SubwordBlockEncoder:
    """Encodes lists of texts with `encode_token` (token -> tuple of subtoken ids) and
    `is_alnum` (a character -> whether it is a letter or digit), remembering up to
    `_MAX_TOKENS` tokens' ids in NumPy arrays.
    """

    def __init__(self, encode_token, is_alnum):
        self._encode_token = encode_token
        self._is_alnum = is_alnum
        # (bytes.translate gives the alphanumeric flags of ASCII units at C speed.)
        self._alnum_bytes = bytes(bool(is_alnum(chr(c))) for c in range(_ASCII)) + bytes(128)
        rng = np.random.default_rng()  # (fresh entropy: slots and collisions are hard to aim at)
        self._slot_factor, self._first_factor, self._second_factor = (
            rng.integers(0, 2**63, 3, np.uint64) * np.uint64(2) + np.uint64(1))
        self._clear()

    def _clear(self):
        self._full = False
        self._code_units = _CodeUnits(self._is_alnum)
        self._n_tokens = 0
        self._slots = _empty_slots(_FIRST_SLOTS)
        # The ids of the tokens in the table, one after another (then, in each block,
        # those of the tokens encoded without it); at the first id of a token of two
        # words, its words (to check a key found).
        self._flat_ids = np.zeros(1024, np.int64)
        self._first_words = np.zeros(1024, np.uint64)
        self._second_words = np.zeros(1024, np.uint64)
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
        text_ends = np.cumsum(lengths)
        units, alnum, keyless_at = self._classify(joined)
        starts, ends = _token_bounds(units, alnum, text_ends - lengths, n)
        keys, two_words = self._token_keys(units, starts, ends - starts)
        if keyless_at is not None:
            keys[np.searchsorted(ends, keyless_at, side="right")] = 0

        found = self._find(keys)
        offsets, counts = found["offset"], found["count"]
        # A key of two words found is checked against the words kept at its first id.
        long, first, second = two_words
        at = offsets[long]
        differ = (self._first_words.take(at) != first) | (self._second_words.take(at) != second)
        wrong = long[differ & (counts[long] >= 0)]
        counts[wrong] = -1
        keys[wrong] = 0  # (another token's key: encoded on its own, not added again)
        missing = (counts < 0).nonzero()[0]
        if len(missing):
            self._add_missing(joined, starts, ends, keys, two_words, offsets, counts, missing)
        id_ends = np.empty(len(counts) + 1, np.int64)
        id_ends[0] = 0
        np.cumsum(counts, out=id_ends[1:])
        index = np.arange(id_ends[-1]) + np.repeat(offsets - id_ends[:-1], counts)
        ids = self._flat_ids.take(index)
        if self._full:
            self._clear()
        # The tokens of text i are those that start before its end.
        text_id_ends = id_ends.take(np.searchsorted(starts, text_ends)).tolist()
        return [ids[a:b].copy() for a, b in zip([0, *text_id_ends[:-1]], text_id_ends)]

    def _classify(self, joined):
        """The units of `joined` (uint8, then 16 zeros: words can be read at any token
        start), whether each character is alphanumeric, and the positions of the
        characters without a unit (None if none)."""
        n = len(joined)
        if type(joined) is bytes or joined.isascii():
            ascii = joined if type(joined) is bytes else joined.encode("ascii")
            units = np.frombuffer(ascii + bytes(16), np.uint8)
            alnum = np.frombuffer(ascii.translate(self._alnum_bytes), bool)
            return units, alnum, (units[:n] == 0).nonzero()[0] if b"\0" in ascii else None
        # Code points: Latin-1 bytes when every character is below 256 (a copy of a
        # one-byte string), else a NumPy UCS4 copy (~3x faster than encoding UTF-16 or
        # UTF-32 from a two-byte string; lone surrogates are kept as their code points).
        try:
            codes = np.frombuffer(joined.encode("latin-1"), np.uint8)
        except UnicodeEncodeError:
            codes = np.array(joined).reshape(1).view(np.uint32)
        units = np.zeros(n + 16, np.uint8)
        units[:n] = codes  # (non-ASCII ones truncated, then replaced)
        where = (codes >= _ASCII).nonzero()[0]
        packed = np.fromiter(map(self._code_units.__getitem__, codes.take(where).tolist()),
                             np.int64, len(where))
        units[where] = packed >> 1
        alnum = np.frombuffer(bytearray(units[:n]).translate(self._alnum_bytes), bool)
        alnum[where] = packed & 1
        keyless_at = (units[:n] == 0).nonzero()[0] if "\0" in joined else where[packed < 2]
        return units, alnum, keyless_at if len(keyless_at) else None

    def _token_keys(self, units, starts, lengths):
        """Each token's uint64 key (0 if it is longer than `_MAX_KEYED_LENGTH`), and
        (indexes, first words, second words) of the tokens longer than 8 units."""
        # The 8 units from each position, made contiguous once (`take` would copy it twice).
        words = np.ascontiguousarray(np.ndarray((len(units) - 7,), _WORD, units, 0, (1,)))
        keys = words.take(starts)
        keys &= _MASKS.take(lengths, mode="clip")
        long = (lengths > 8).nonzero()[0]
        long_lengths = lengths.take(long)
        first = keys.take(long)
        second = words.take(starts.take(long) + 8)
        second &= _MASKS.take(long_lengths - 8, mode="clip")
        hashed = first * self._first_factor + second * self._second_factor
        keys[long] = (hashed & _TWO_WORD_BITS) | _TWO_WORD_TAG
        keys[long[long_lengths > _MAX_KEYED_LENGTH]] = 0
        return keys, (long, first, second)

    # ------------------------------------------------------- the token table

    def _slot_of(self, keys):
        shift = np.uint64(64 - (len(self._slots).bit_length() - 1))
        return ((keys * self._slot_factor) >> shift).view(np.int64)  # (multiply-shift)

    def _find(self, keys):
        """The table's slot of each key: its offset and count of ids (count -1 where the
        key is not in the table; always for key 0).

        Linear probing: a probe ends at the key or at an empty slot (key 0).
        """
        slots = self._slot_of(keys)
        table = self._slots
        mask = len(table) - 1
        found = table.take(slots)  # (key, offset and count: one memory access)
        probing = (found["key"] != keys).nonzero()[0]
        probing = probing[found["key"][probing] != 0]
        while len(probing):
            at = slots.take(probing)
            at += 1
            at &= mask
            slots[probing] = at
            found[probing] = slot = table.take(at)
            probing = probing[(slot["key"] != keys.take(probing)) & (slot["key"] != 0)]
        return found

    def _add_missing(self, joined, starts, ends, keys, two_words, offsets, counts, missing):
        """Encodes the tokens at `missing` one by one and sets their `offsets` and
        `counts`. Those with keys are added to the table; the others' ids (no key, or
        met when the table is full: it is emptied once this block is done) are put
        after the table's, for this block only."""
        added, passing = {}, {}  # text -> its number in added_ids (passing: ~ in passing_ids)
        added_ids, passing_ids = [], []
        added_at = []  # (the index of each added token's first occurrence)
        numbers = []
        room = _MAX_TOKENS - self._n_tokens
        for index, start, end, keyed in zip(missing.tolist(), starts.take(missing).tolist(),
                                            ends.take(missing).tolist(),
                                            keys.take(missing).tolist()):
            text = joined[start:end]
            if type(text) is bytes:
                text = text.decode("ascii")
            number = added.get(text)
            if number is None:
                number = passing.get(text)
                if number is None and keyed and len(added_ids) < room:
                    number = added[text] = len(added_ids)
                    added_ids.append(self._encode_token(text))
                    added_at.append(index)
                elif number is None:
                    self._full |= bool(keyed)
                    number = passing[text] = ~len(passing_ids)
                    passing_ids.append(self._encode_token(text))
            numbers.append(number)
        numbers = [number if number >= 0 else len(added_ids) + ~number for number in numbers]
        all_ids = added_ids + passing_ids
        new_counts = np.fromiter(map(len, all_ids), np.int64, len(all_ids))
        new_offsets = self._n_flat + np.cumsum(new_counts) - new_counts
        n_flat = self._n_flat + int(new_counts.sum())
        while n_flat > len(self._flat_ids):
            for name in ("_flat_ids", "_first_words", "_second_words"):
                old = getattr(self, name)
                setattr(self, name, np.concatenate([old, np.zeros_like(old)]))
        self._flat_ids[self._n_flat:n_flat] = np.fromiter(
            itertools.chain.from_iterable(all_ids), np.int64, n_flat - self._n_flat)
        offsets[missing] = new_offsets.take(numbers)
        counts[missing] = new_counts.take(numbers)
        if added_at:
            self._insert(np.array(added_at), keys, two_words, new_offsets[:len(added_at)],
                         new_counts[:len(added_at)])

    def _insert(self, at, keys, two_words, offsets, counts):
        """Adds the tokens at indexes `at`, whose ids are at these `offsets` (the next)."""
        self._n_tokens += len(at)
        while 4 * self._n_tokens > len(self._slots):
            self._grow()
        self._n_flat = int(offsets[-1] + counts[-1])
        long, first, second = two_words
        if len(long):  # (the words of the tokens of two words, at their first ids)
            where = np.searchsorted(long, at).clip(0, len(long) - 1)
            is_long = long.take(where) == at
            self._first_words[offsets[is_long]] = first.take(where[is_long])
            self._second_words[offsets[is_long]] = second.take(where[is_long])
        self._place(keys.take(at), offsets, counts)

    def _place(self, keys, offsets, counts):
        """Puts each key in the first empty slot from its home slot."""
        mask = len(self._slots) - 1
        occupied = self._slots["key"]
        for slot, *record in zip(self._slot_of(keys).tolist(), keys.tolist(),
                                 offsets.tolist(), counts.tolist()):
            while occupied[slot]:
                slot = (slot + 1) & mask
            self._slots[slot] = tuple(record)

    def _grow(self):
        old = self._slots[self._slots["key"] != 0]
        self._slots = _empty_slots(2 * len(self._slots))
        self._place(old["key"], old["offset"], old["count"])


def _empty_slots(n):
    """An empty table of `n` slots: a key (0: empty, no token's key), and the offset
    and count of its ids in the flat ids (count -1: none)."""
    slots = np.zeros(n, [("key", np.uint64), ("offset", np.int32), ("count", np.int32)])
    slots["count"] = -1
    return slots


def _token_bounds(units, alnum, text_starts, n):
    """The starts and ends of the tokens: runs of alphanumeric or other characters, none
    across texts; a lone space between two words is dropped."""
    inside = np.empty(n + 1, bool)  # [p]: a run ends before p and another starts at p
    inside[0] = inside[n] = False
    np.not_equal(alnum[1:], alnum[:-1], out=inside[1:n])
    inside[text_starts] = False
    lone = units[:n] == 32
    lone &= inside[:-1]
    lone &= inside[1:]
    inside[text_starts] = True
    inside[n] = True
    starts = np.greater(inside[:-1], lone).nonzero()[0]  # (a run start, not a lone space)
    # A token ends where the next one starts, or at the lone space before it.
    ends = np.empty_like(starts)
    np.subtract(starts[1:], lone.take(starts[1:] - 1), out=ends[:-1])
    ends[-1] = n
    return starts, ends
