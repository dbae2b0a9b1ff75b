"""Trax's ``.subword`` vocabularies: tensor2tensor's ``SubwordTextEncoder``, in pure Python.

A ``.subword`` file (e.g. Trax's ``en_8k.subword``) lists one subtoken per
line, usually wrapped in single quotes; line ``i`` is id ``i``, and ids 0 and
1 are ``<pad>`` and ``<EOS>``. Encoding text has four steps (tensor2tensor's
algorithm, reproduced exactly so Trax's vocab files give Trax's ids):

1. Split the text into alternating runs of alphanumeric (Unicode categories
   L* and N*) and other characters, dropping a single space between two
   alphanumeric runs (`tokenize_text`; invertible by `detokenize_text`).
2. Escape each token: ``\\`` -> ``\\\\``, ``_`` -> ``\\u``, a character not
   in the vocabulary's alphabet (and ``\\n``) -> ``\\<code point>;``, then
   append ``_``, which marks the token's end.
3. Cut each escaped token greedily, left to right, into the longest subtokens
   of the vocabulary.
4. Concatenate the ids. Decoding concatenates the subtokens, splits at
   ``_`` and undoes steps 2 and 1, so ``decode(encode(s)) == s`` for any text.

`SubwordTextEncoder.build_from_generator` learns a vocabulary from text
(tensor2tensor's builder: a binary search over the minimum subtoken count
for a vocabulary near ``target_size``), and `store_to_file` writes it:

>>> encoder = SubwordTextEncoder.build_from_token_counts_at(
...     {"the": 5, "cat": 3, "hat": 2}, min_count=2)
>>> ids = encoder.encode("the cat")
>>> encoder.decode(ids)
'the cat'
>>> [encoder.all_subtoken_strings[i] for i in ids]
['the_', 'cat_']
"""

from __future__ import annotations

import collections
import itertools
import os
import re
import unicodedata

import numpy as np

__all__ = [
    "PAD",
    "EOS",
    "RESERVED_TOKENS",
    "SubwordTextEncoder",
    "tokenize_text",
    "detokenize_text",
    "escape_token",
    "unescape_token",
]

PAD = "<pad>"
EOS = "<EOS>"
RESERVED_TOKENS = [PAD, EOS]

# '\u' -> '_', '\\' -> '\', '\123;' -> chr(123).
_UNESCAPE_REGEX = re.compile(r"\\u|\\\\|\\([0-9]+);")
# Every vocabulary can spell these, so any character can be escaped.
_ESCAPE_CHARS = frozenset("\\_u;0123456789")
_UNDEFINED_CHAR = "\u3013"  # what tensor2tensor decodes an impossible code point to

_ALNUM_CACHE: dict = {}
# ASCII text's tokens in one pass: runs of letters and digits, and runs of anything
# else except a lone space that is neither the first nor the last character (the
# space `tokenize_text` drops between two alphanumeric runs).
_ASCII_TOKENS = re.compile(r"[A-Za-z0-9]+|[^A-Za-z0-9]{2,}|(?! )[^A-Za-z0-9]|^ | \Z")
# Tokens whose subtoken ids are remembered, at most (bounded memory on endless streams).
_CACHE_SIZE = 2**16


def _is_alnum(char):
    """Whether `char` is a letter or a number (tensor2tensor's alphanumeric set)."""
    known = _ALNUM_CACHE.get(char)
    if known is None:
        known = _ALNUM_CACHE[char] = unicodedata.category(char)[0] in "LN"
    return known


def tokenize_text(text):
    """Splits text into alphanumeric and non-alphanumeric runs (tensor2tensor's tokenizer).

    A single space between two alphanumeric runs is dropped; `detokenize_text`
    puts it back.

    >>> tokenize_text("Dude - that's so cool.")
    ['Dude', ' - ', 'that', "'", 's', 'so', 'cool', '.']
    """
    if not text:
        return []
    if text.isascii():
        # ASCII's letters and digits are exactly its L* and N* characters: one regex
        # finds the tokens (~5x faster than `_tokenize_by_character`, the same tokens).
        return _ASCII_TOKENS.findall(text)
    return _tokenize_by_character(text)


def _tokenize_by_character(text):
    """`tokenize_text` of a non-empty text, character by character (any Unicode)."""
    tokens = []
    token_start = 0
    is_alnum = [_is_alnum(c) for c in text]
    for pos in range(1, len(text)):
        if is_alnum[pos] != is_alnum[pos - 1]:
            token = text[token_start:pos]
            if token != " " or token_start == 0:
                tokens.append(token)
            token_start = pos
    tokens.append(text[token_start:])
    return tokens


def detokenize_text(tokens):
    """The inverse of `tokenize_text`.

    >>> detokenize_text(['Dude', ' - ', 'that', "'", 's', 'so', 'cool', '.'])
    "Dude - that's so cool."
    """
    parts = []
    previous_alnum = False
    for i, token in enumerate(tokens):
        alnum = _is_alnum(token[0])
        if i > 0 and previous_alnum and alnum:
            parts.append(" ")
        parts.append(token)
        previous_alnum = alnum
    return "".join(parts)


def escape_token(token, alphabet):
    """Escapes ``\\``, ``_``, newlines and characters outside `alphabet`, and appends ``_``.

    The alphabet of an encoder always holds the escape characters ``\\_u;0-9``:

    >>> escape_token("a_b!", set("ab") | set("\\\\_u;0123456789"))
    'a\\\\ub\\\\33;_'
    """
    if not isinstance(token, str):
        raise TypeError(f"escape_token: expected a str token, got {type(token).__name__}.")
    token = token.replace("\\", "\\\\").replace("_", "\\u")
    escaped = [c if c in alphabet and c != "\n" else f"\\{ord(c)};" for c in token]
    return "".join(escaped) + "_"


def unescape_token(escaped_token):
    """The inverse of `escape_token`.

    >>> unescape_token('a\\\\ub\\\\33;_')
    'a_b!'
    """

    def replace(match):
        if match.group(1) is None:
            return "_" if match.group(0) == "\\u" else "\\"
        try:
            return chr(int(match.group(1)))
        except (ValueError, OverflowError):
            return _UNDEFINED_CHAR

    trimmed = escaped_token[:-1] if escaped_token.endswith("_") else escaped_token
    return _UNESCAPE_REGEX.sub(replace, trimmed)


_UTF8, _IGNORE = itertools.repeat("utf-8"), itertools.repeat("ignore")  # (for map)


def _decode_utf8(data):
    return data.decode("utf-8", "ignore")


def _as_text(text, where):
    if isinstance(text, str):
        return text
    if isinstance(text, (bytes, bytearray)):
        # As tensor2tensor's native_to_unicode: undecodable bytes are dropped.
        return _decode_utf8(bytes(text))
    raise TypeError(f"{where}: expected text (str or bytes), got {type(text).__name__}: {text!r:.80}")


class _TokenIds(dict):
    """Token -> tuple of its subtoken ids, computed by `encode_token` on first use.

    A dict subclass so that the hot loop of tokenizing a stream is a C-level
    ``map(cache.__getitem__, tokens)``: only a missing token runs Python code.
    """

    def __init__(self, encode_token):
        super().__init__()
        self._encode_token = encode_token

    def __missing__(self, token):
        ids = tuple(self._encode_token(token))
        if len(self) >= _CACHE_SIZE:
            self.clear()
        self[token] = ids
        return ids


class SubwordTextEncoder:
    """Invertible subword encoding with a limited vocabulary (tensor2tensor's, for ``.subword`` files).

    Args:
      filename: a ``.subword`` vocabulary file to read; None for an empty
        encoder (to be built with one of the ``build_*`` methods).

    >>> import os, tempfile
    >>> encoder = SubwordTextEncoder.build_from_token_counts_at({"hello": 3, "world": 2}, 2)
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.subword")
    >>> encoder.store_to_file(path)
    >>> reloaded = SubwordTextEncoder(path)
    >>> reloaded.encode("hello world") == encoder.encode("hello world")
    True
    """

    def __init__(self, filename=None):
        self._alphabet = set()
        self._all_subtoken_strings = []
        self._subtoken_string_to_id = {}
        self._max_subtoken_len = 0
        self._cache = _TokenIds(self._encode_token)
        self._block_encoder = None
        self.filename = filename
        if filename is not None:
            self._load_from_file(filename)

    # ------------------------------------------------------------- encoding

    def encode(self, text):
        """Text (str, or UTF-8 bytes) -> list of subtoken ids; no EOS is appended."""
        return self._tokens_to_subtoken_ids(tokenize_text(_as_text(text, "SubwordTextEncoder.encode")))

    def encode_array(self, text):
        """`encode` as an int64 NumPy array (what `pax_trax.data.Tokenize` yields), made
        without an intermediate list.

        >>> SubwordTextEncoder.build_from_token_counts_at({"hi": 2}, 1).encode_array("hi hi")
        array([2, 2])
        """
        tokens = tokenize_text(_as_text(text, "SubwordTextEncoder.encode_array"))
        return np.fromiter(self._subtoken_ids(tokens), np.int64)

    def encode_batch(self, texts):
        """`encode_array` of each of `texts` (str or UTF-8 bytes), ~4x faster per text
        on short texts: the whole list is tokenized and looked up with NumPy
        (`pax_trax.data._subword_blocks`).

        >>> encoder = SubwordTextEncoder.build_from_token_counts_at({"hi": 2}, 1)
        >>> [ids.tolist() for ids in encoder.encode_batch(["hi hi", b"hi"])]
        [[2, 2], [2]]
        """
        texts = list(texts)
        kinds = set(map(type, texts))
        if kinds == {bytes}:
            if not all(map(bytes.isascii, texts)):  # (ASCII bytes are their own code points)
                texts = list(map(bytes.decode, texts, _UTF8, _IGNORE))
        elif kinds != {str}:
            texts = [_as_text(text, "SubwordTextEncoder.encode_batch") for text in texts]
        if self._block_encoder is None:
            from pax_trax.data._subword_blocks import SubwordBlockEncoder

            self._block_encoder = SubwordBlockEncoder(self._cache.__getitem__, _is_alnum)
        return self._block_encoder.encode(texts)

    def encode_without_tokenizing(self, token_text):
        """Encodes `token_text` as a single token (no split into alphanumeric runs)."""
        return self._tokens_to_subtoken_ids([_as_text(token_text, "SubwordTextEncoder.encode")])

    def decode(self, ids, strip_extraneous=False):
        """Subtoken ids -> text. Ids outside the vocabulary decode to nothing.

        With `strip_extraneous`, trailing ``<pad>``/``<EOS>`` ids (0 and 1) are dropped first.
        """
        ids = [int(i) for i in ids]
        if strip_extraneous:
            while ids and ids[-1] in (0, 1):
                ids.pop()
        return detokenize_text(self._subtoken_ids_to_tokens(ids))

    def decode_list(self, ids):
        """The subtoken string of each id."""
        return [self._subtoken_id_to_subtoken_string(int(i)) for i in ids]

    @property
    def vocab_size(self):
        """The number of subtokens (ids are ``0 .. vocab_size - 1``)."""
        return len(self._all_subtoken_strings)

    @property
    def all_subtoken_strings(self):
        return tuple(self._all_subtoken_strings)

    @property
    def alphabet(self):
        """The characters the vocabulary spells without escaping."""
        return frozenset(self._alphabet)

    def _tokens_to_subtoken_ids(self, tokens):
        return list(self._subtoken_ids(tokens))

    def _subtoken_ids(self, tokens):
        """An iterator of the tokens' subtoken ids, from the cache at C speed."""
        return itertools.chain.from_iterable(map(self._cache.__getitem__, tokens))

    def _encode_token(self, token):
        return self._escaped_token_to_subtoken_ids(escape_token(token, self._alphabet))

    def _subtoken_ids_to_tokens(self, subtokens):
        concatenated = "".join(self._subtoken_id_to_subtoken_string(s) for s in subtokens)
        tokens = []
        for piece in concatenated.split("_"):
            if piece:
                unescaped = unescape_token(piece + "_")
                if unescaped:
                    tokens.append(unescaped)
        return tokens

    def _subtoken_id_to_subtoken_string(self, subtoken):
        if 0 <= subtoken < self.vocab_size:
            return self._all_subtoken_strings[subtoken]
        return ""

    def _escaped_token_to_subtoken_strings(self, escaped_token):
        # Greedy: the longest vocabulary subtoken that is a prefix of the rest.
        pieces = []
        start = 0
        token_len = len(escaped_token)
        while start < token_len:
            for end in range(min(token_len, start + self._max_subtoken_len), start, -1):
                subtoken = escaped_token[start:end]
                if subtoken in self._subtoken_string_to_id:
                    pieces.append(subtoken)
                    start = end
                    break
            else:
                # Only possible for a vocabulary that lacks an escape character.
                raise ValueError(
                    f"SubwordTextEncoder: cannot spell {escaped_token[start:]!r} with this "
                    f"vocabulary ({self.filename or 'built in memory'}); a .subword vocabulary must "
                    f"contain every one of the characters {''.join(sorted(_ESCAPE_CHARS))!r}.")
        return pieces

    def _escaped_token_to_subtoken_ids(self, escaped_token):
        return [self._subtoken_string_to_id[s] for s in self._escaped_token_to_subtoken_strings(escaped_token)]

    # ------------------------------------------------------------- building

    @classmethod
    def build_from_generator(cls, generator, target_size, max_subtoken_length=None,
                             reserved_tokens=None):
        """Learns a vocabulary of about `target_size` subtokens from an iterable of texts.

        tensor2tensor's ``build_from_generator``: counts the tokens of the text,
        then binary-searches the minimum subtoken count in [1, 1000].
        `max_subtoken_length` bounds the work per token (quadratic in the
        token's length when None).
        """
        token_counts = collections.Counter()
        for text in generator:
            token_counts.update(tokenize_text(_as_text(text, "SubwordTextEncoder.build_from_generator")))
        return cls.build_to_target_size(target_size, token_counts, 1, 1000,
                                        max_subtoken_length=max_subtoken_length,
                                        reserved_tokens=reserved_tokens)

    @classmethod
    def build_to_target_size(cls, target_size, token_counts, min_val, max_val,
                             max_subtoken_length=None, reserved_tokens=None, num_iterations=4):
        """Binary-searches the minimum count in ``[min_val, max_val]`` whose vocabulary
        size is nearest `target_size` (within 1% stops the search)."""
        if min_val > max_val:
            raise ValueError(f"SubwordTextEncoder.build_to_target_size: min_val ({min_val}) "
                             f"is greater than max_val ({max_val}).")
        if target_size < 1:
            raise ValueError(f"SubwordTextEncoder.build_to_target_size: target_size must be "
                             f"positive, got {target_size}.")
        if not token_counts:
            raise ValueError("SubwordTextEncoder.build_to_target_size: no text to learn from "
                             "(the token counts are empty).")

        def bisect(low, high):
            present_count = (low + high) // 2
            encoder = cls.build_from_token_counts_at(
                token_counts, present_count, num_iterations,
                reserved_tokens=reserved_tokens, max_subtoken_length=max_subtoken_length)
            is_ok = abs(encoder.vocab_size - target_size) * 100 < target_size
            if is_ok or low >= high or present_count < 2:
                return encoder
            if encoder.vocab_size > target_size:
                other = bisect(present_count + 1, high)
            else:
                other = bisect(low, present_count - 1)
            if abs(other.vocab_size - target_size) < abs(encoder.vocab_size - target_size):
                return other
            return encoder

        return bisect(min_val, max_val)

    @classmethod
    def build_from_token_counts_at(cls, token_counts, min_count, num_iterations=4,
                                   reserved_tokens=None, max_subtoken_length=None):
        """A new encoder built by `build_from_token_counts` (one minimum count, no search)."""
        encoder = cls()
        encoder.build_from_token_counts(token_counts, min_count, num_iterations,
                                        reserved_tokens=reserved_tokens,
                                        max_subtoken_length=max_subtoken_length)
        return encoder

    def build_from_token_counts(self, token_counts, min_count, num_iterations=4,
                                reserved_tokens=None, max_subtoken_length=None):
        """Learns the vocabulary from ``{token: count}`` (tensor2tensor's algorithm).

        Each iteration splits every token along the current subtokens, counts
        all substrings that start at a subtoken boundary, and keeps those seen
        at least `min_count` times (longest first, discounting their prefixes),
        plus the whole alphabet so every string stays encodable.
        """
        if reserved_tokens is None:
            reserved_tokens = RESERVED_TOKENS
        elif list(reserved_tokens[:len(RESERVED_TOKENS)]) != RESERVED_TOKENS[:len(reserved_tokens)]:
            raise ValueError(f"SubwordTextEncoder: reserved_tokens must start with "
                             f"{RESERVED_TOKENS}, got {list(reserved_tokens)}.")
        reserved_tokens = list(reserved_tokens)
        # The alphabet includes the reserved tokens' characters, or they could not be encoded.
        self._init_alphabet_from_tokens(itertools.chain(token_counts, reserved_tokens))
        self._init_subtokens_from_list(sorted(self._alphabet), reserved_tokens=reserved_tokens)
        min_count = max(min_count, 1)
        # The alphabet no longer changes: escape every token once.
        escaped_counts = [(escape_token(token, self._alphabet), count)
                          for token, count in token_counts.items()]
        for _ in range(num_iterations):
            subtoken_counts = collections.defaultdict(int)
            for escaped_token, count in escaped_counts:
                start = 0
                for subtoken in self._escaped_token_to_subtoken_strings(escaped_token):
                    last_position = len(escaped_token) + 1
                    if max_subtoken_length is not None:
                        last_position = min(last_position, start + max_subtoken_length)
                    for end in range(start + 1, last_position):
                        subtoken_counts[escaped_token[start:end]] += count
                    start += len(subtoken)

            by_length = collections.defaultdict(list)
            for subtoken_string, count in subtoken_counts.items():
                if count >= min_count:
                    by_length[len(subtoken_string)].append(subtoken_string)
            # Longest first, so accepting a subtoken can discount its prefixes.
            new_subtoken_strings = []
            for length in sorted(by_length, reverse=True):
                for subtoken_string in by_length[length]:
                    count = subtoken_counts[subtoken_string]
                    if count >= min_count:
                        if subtoken_string not in self._alphabet:
                            new_subtoken_strings.append((count, subtoken_string))
                        for prefix_length in range(1, length):
                            subtoken_counts[subtoken_string[:prefix_length]] -= count
            new_subtoken_strings.extend((subtoken_counts.get(a, 0), a) for a in self._alphabet)
            new_subtoken_strings.sort(reverse=True)
            strings = [subtoken for _, subtoken in new_subtoken_strings]
            escaped_reserved = [escape_token(t, self._alphabet) for t in reserved_tokens]
            self._init_subtokens_from_list(escaped_reserved + strings)

    def _init_subtokens_from_list(self, subtoken_strings, reserved_tokens=None):
        reserved_tokens = list(reserved_tokens or [])
        self._all_subtoken_strings = reserved_tokens + list(subtoken_strings)
        self._max_subtoken_len = max((len(s) for s in subtoken_strings), default=0)
        # As tensor2tensor: a subtoken listed twice maps to its last id.
        self._subtoken_string_to_id = {
            s: i + len(reserved_tokens) for i, s in enumerate(subtoken_strings) if s}
        self._cache = _TokenIds(self._encode_token)
        self._block_encoder = None  # (it remembers ids of the old subtokens)

    def _init_alphabet_from_tokens(self, tokens):
        self._alphabet = {c for token in tokens for c in token} | _ESCAPE_CHARS

    # ---------------------------------------------------------------- files

    def _load_from_file(self, filename):
        if not os.path.isfile(filename):
            raise FileNotFoundError(f"SubwordTextEncoder: vocabulary file {filename!r} not found.")
        # newline="\n": a subtoken may hold a carriage return.
        with open(filename, encoding="utf-8", newline="\n") as f:
            self._load_from_lines(f)

    def _load_from_lines(self, lines):
        subtoken_strings = []
        for line in lines:
            s = line.rstrip()
            # Some vocab files wrap subtokens in single quotes, some in double, some in none.
            if len(s) >= 2 and ((s[0] == s[-1] == "'") or (s[0] == s[-1] == '"')):
                s = s[1:-1]
            subtoken_strings.append(s)
        if not subtoken_strings:
            raise ValueError(f"SubwordTextEncoder: vocabulary file {self.filename!r} is empty.")
        self._init_subtokens_from_list(subtoken_strings)
        self._init_alphabet_from_tokens(subtoken_strings)

    def store_to_file(self, filename, add_single_quotes=True):
        """Writes the vocabulary, one subtoken per line (quoted, as Trax's files)."""
        with open(filename, "w", encoding="utf-8", newline="\n") as f:
            for subtoken_string in self._all_subtoken_strings:
                f.write(f"'{subtoken_string}'\n" if add_single_quotes else subtoken_string + "\n")
