"""The MathQA program language: run (`compute_result`), translate to Python
(`compute_program`), find numbers (`compute_nums`), check an example
(`process_single_mathqa_example`), write constants (`convert_float_to_mathqa`).

The public names are re-exported by `pax_trax.data.mathqa` (see its module
docstring for the differences from Trax).

>>> compute_result(['multiply(n0,const_2)', 'subtract(#0,const_0_5)'], [3.0])
[6.0, 5.5]
"""

from __future__ import annotations

import decimal
import math
import re

import numpy as np

__all__ = [
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

_P = "pax_trax.data."

# Numbers as MathQA's tools find them in text: signs, leading dots, thousands
# separators ("4,000"), decimals and exponents.
_NUMBER = re.compile(r"[-+]?[.]?[\d]+(?:,\d\d\d)*[\.]?\d*(?:[eE][-+]?\d+)?")
_OP = re.compile(r"^\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$")
_CONST = re.compile(r"^const_(-?)(\d+)(?:[_.](\d+))?$")
_NAMED_CONSTS = {"const_pi": math.pi, "const_deg_to_rad": math.pi / 180}


# ------------------------------------------------------------------ operations


def _safe_divide(a, b):
    return a / b if b != 0 else 0  # MathQA's programs rely on x / 0 == 0


def _combined_work(a, b):
    return 1 / (min(a, 1 / a) + min(b, 1 / b))


def _find_work(a, b):
    rate_a, rate_b = min(a, 1 / a), min(b, 1 / b)
    return 1 / (max(rate_a, rate_b) - min(rate_a, rate_b))


def _check_float_range(count, bound):
    # n! overflows a float for n > 170 and C(n, k) for min(k, n - k) > 1100: refusing
    # these early avoids computing huge integers (seconds, or minutes) only to fail.
    if count > bound:
        raise OverflowError("result too large for a float")


def _permutation(a, b):
    # Trax: factorial(int(m)) / factorial(int(m - n)), m and n the larger and smaller argument
    # (int(m) - int(m - n) factors, not int(n): 5.5 and 2.7 give 5! / 2! = 60).
    n, m = min(a, b), max(a, b)
    top, bottom = int(m), int(m - n)
    if top < 0 or bottom < 0:
        raise ValueError("factorial() not defined for negative values")
    _check_float_range(abs(top - bottom), 170)
    if bottom <= top:
        return float(math.perm(top, top - bottom))
    return 1 / math.perm(bottom, bottom - top)  # a negative n: m! / (m - n)! < 1


def _choose(n, k):
    n, k = int(n), int(k)
    if n < 0 or k < 0 or k > n:
        return 0.0  # as scipy.special.comb, which Trax used
    _check_float_range(min(k, n - k), 1100)
    return float(math.comb(n, k))


def _heron(a, b, c):
    s = (a + b + c) / 2
    return math.sqrt(max(0, s * (s - a) * (s - b) * (s - c)))


# name: (number of arguments, computation, Python expression of the arguments)
_OPS = {
    "add": (2, lambda a, b: a + b, "{0} + {1}"),
    "circle_arc": (2, lambda a, b: a / 360 * math.pi * 2 * b, "{0} / 360 * math.pi * 2 * {1}"),
    "circle_area": (1, lambda a: math.pi * a**2, "math.pi * {0}**2"),
    "circle_sector_area": (2, lambda a, b: b / 360 * math.pi * (a**2), "{1} / 360 * math.pi * ({0}**2)"),
    "circumface": (1, lambda a: 2 * math.pi * a, "2 * math.pi * {0}"),
    "choose": (2, _choose, "math.comb(int({0}), int({1}))"),
    "cosine": (1, math.cos, "math.cos({0})"),
    "cube_edge_by_volume": (1, lambda a: a ** (1 / 3), "{0}**(1 / 3)"),
    "combined_work": (2, _combined_work, "1 / (min({0}, 1 / {0}) + min({1}, 1 / {1}))"),
    "count_interval": (2, lambda a, b: a - b + 1, "{0} - {1} + 1"),
    "diagonal": (2, lambda a, b: math.sqrt(a**2 + b**2), "math.sqrt({0}**2 + {1}**2)"),
    "divide": (2, _safe_divide, "{0} / {1}"),
    "speed": (2, _safe_divide, "{0} / {1}"),
    "factorial": (1, lambda a: math.factorial(min(15, int(a))), "math.factorial(min(15, int({0})))"),
    "floor": (1, math.floor, "math.floor({0})"),
    "find_work": (2, _find_work,
                  "1 / (max(min({0}, 1 / {0}), min({1}, 1 / {1})) - min(min({0}, 1 / {0}), min({1}, 1 / {1})))"),
    "from_percent": (1, lambda a: a / 100, "{0} / 100"),
    "gain_percent": (1, lambda a: 100 + a, "100 + {0}"),
    "gcd": (2, lambda a, b: math.gcd(int(a), int(b)), "math.gcd(int({0}), int({1}))"),
    "inverse": (1, lambda a: _safe_divide(1, a), "1 / {0}"),
    "lcm": (2, lambda a, b: math.lcm(int(a), int(b)), "math.lcm(int({0}), int({1}))"),
    "log": (1, lambda a: math.log(max(1e-5, a), 2), "math.log(max(1e-5, {0}), 2)"),
    "loss_percent": (1, lambda a: 100 - a, "100 - {0}"),
    "max": (2, max, "max({0},{1})"),  # (Trax's spacing)
    "multiply": (2, lambda a, b: a * b, "{0} * {1}"),
    "negate_percent": (1, lambda a: 100 - a, "100 - {0}"),
    "negate": (1, lambda a: -a, "-{0}"),
    "original_price_before_loss": (2, lambda a, b: b * 100 / (100 + 1e-5 - a), "{1} * 100 / (100 + 1e-5 - {0})"),
    "original_price_before_gain": (2, lambda a, b: b * 100 / (100 + a), "{1} * 100 / (100 + {0})"),
    "permutation": (2, _permutation,
                    "float(math.perm(int(max({0}, {1})), int(max({0}, {1})) - int(max({0}, {1}) - min({0}, {1}))))"),
    "power": (2, lambda a, b: a ** min(b, 5), "{0}**min({1}, 5)"),
    "percent": (2, lambda a, b: a / 100 * b, "{0} / 100 * {1}"),
    "price_after_gain": (2, lambda a, b: (1 + a / 100) * b, "(1 + {0} / 100) * {1}"),
    "p_after_gain": (2, lambda a, b: (1 + a / 100) * b, "(1 + {0} / 100) * {1}"),
    "price_after_loss": (2, lambda a, b: (1 - a / 100) * b, "(1 - {0} / 100) * {1}"),
    "quadrilateral_area": (3, lambda a, b, c: a * (b + c) / 2, "{0} * ({1} + {2}) / 2"),
    "reminder": (2, lambda a, b: a % b, "{0} % {1}"),
    "rectangle_area": (2, lambda a, b: a * b, "{0} * {1}"),
    "rectangle_perimeter": (2, lambda a, b: 2 * (a + b), "2 * ({0} + {1})"),
    "rhombus_area": (2, lambda a, b: a * b / 2, "{0} * {1} / 2"),
    "sine": (1, math.sin, "math.sin({0})"),
    "sqrt": (1, lambda a: math.sqrt(max(0, a)), "math.sqrt(max(0, {0}))"),
    "subtract": (2, lambda a, b: a - b, "{0} - {1}"),
    "square_edge_by_perimeter": (1, lambda a: a / 4, "{0} / 4."),
    "square_edge_by_area": (1, math.sqrt, "math.sqrt({0})"),
    "square_area": (1, lambda a: a**2, "{0}**2"),
    "surface_cube": (1, lambda a: 6 * a**2, "6 * {0}**2"),
    "surface_rectangular_prism": (3, lambda a, b, c: 2 * (a * b + a * c + b * c),
                                  "2 * ({0} * {1} + {0} * {2} + {1} * {2})"),
    "semi_circle_perimiter": (1, lambda a: math.pi * a + 2 * a, "math.pi * {0} + 2 * {0}"),
    "square_perimeter": (1, lambda a: 4 * a, "4 * {0}"),
    "rhombus_perimeter": (1, lambda a: 4 * a, "4 * {0}"),
    "surface_sphere": (1, lambda a: 4 * math.pi * a**2, "4 * math.pi * {0}**2"),
    "speed_ratio_steel_to_stream": (2, lambda a, b: (a + b) / (a - b), "({0} + {1}) / ({0} - {1})"),
    "speed_in_still_water": (2, lambda a, b: (a + b) / 2, "({0} + {1}) / 2"),
    "stream_speed": (2, lambda a, b: (a - b) / 2, "({0} - {1}) / 2"),
    "trapezium_area": (3, lambda a, b, c: a * (b + c) / 2, "{0} * ({1} + {2}) / 2"),
    "triangle_area": (2, lambda a, b: a * b / 2, "{0} * {1} / 2"),
    "triangle_perimeter": (3, lambda a, b, c: a + b + c, "{0} + {1} + {2}"),
    "triangle_area_three_edges": (
        3, _heron,
        "(lambda s, a, b, c: math.sqrt(max(0, s * (s - a) * (s - b) * (s - c))))"
        "(({0} + {1} + {2}) / 2, {0}, {1}, {2})"),
    "union_prob": (3, lambda a, b, c: a + b - c, "{0} + {1} - {2}"),
    "negate_prob": (1, lambda a: 1 - a, "1 - {0}"),
    "volume_cube": (1, lambda a: a**3, "{0}**3"),
    "volume_cone": (2, lambda a, b: math.pi * a**2 * b / 3, "math.pi * {0}**2 * {1} / 3"),
    "volume_cylinder": (2, lambda a, b: math.pi * a**2 * b, "math.pi * {0}**2 * {1}"),
    "volume_rectangular_prism": (3, lambda a, b, c: a * b * c, "{0} * {1} * {2}"),
    "volume_sphere": (1, lambda a: 4 / 3 * math.pi * a**3, "4 / 3 * math.pi * {0}**3"),
}


def _operation(op_name, num_args, who):
    """``(arity, fn, template)`` of `op_name`, after checking `num_args` against it."""
    if op_name not in _OPS:
        raise ValueError(f"{who}: unknown MathQA operation {op_name!r}; expected one of "
                         f"{', '.join(sorted(_OPS))}.")
    arity, fn, template = _OPS[op_name]
    if isinstance(num_args, (str, bytes)) or not hasattr(num_args, "__len__"):
        raise TypeError(f"{who}: num_args must be a list of {arity} argument(s) of {op_name!r}, "
                        f"got {type(num_args).__name__} {num_args!r}.")
    if len(num_args) != arity:
        raise ValueError(f"{who}: {op_name!r} takes {arity} argument(s), got {len(num_args)}: "
                         f"{list(num_args)!r}.")
    return arity, fn, template


def compute_single_result(op_name, num_args):
    """Computes one MathQA operation, e.g. ``'add'``, on a list of numbers.

    The table covers the operations of the MathQA dataset (``add``,
    ``divide``, ``circle_area``, ``triangle_area_three_edges``, ...), with
    its conventions: ``divide`` and ``inverse`` give 0 for a zero divisor,
    ``power`` caps the exponent at 5, ``factorial`` its argument at 15.
    ``choose`` truncates its arguments to ints (Trax's ``scipy.special.comb``
    interpolated real ones: ``choose(5.5, 2)`` is 10 here, 12.375 there).

    Args:
      op_name: the operation's name.
      num_args: its arguments, numbers.

    Returns:
      The result, a number.

    Raises:
      ValueError: for an unknown operation, a wrong number of arguments, or
        an undefined or non-real result (Trax returned None for an unknown
        operation and raised Python's own errors otherwise).

    >>> compute_single_result('add', [2, 3])
    5
    >>> compute_single_result('speed_in_still_water', [10.0, 2.0])
    6.0
    >>> compute_single_result('divide', [1.0, 0.0])
    0
    """
    who = _P + "compute_single_result"
    _, fn, _ = _operation(op_name, num_args, who)
    for arg in num_args:
        if isinstance(arg, bool) or not isinstance(arg, (int, float, np.integer, np.floating)):
            raise TypeError(f"{who}: the arguments of {op_name!r} must be numbers, got {list(num_args)!r}.")
    try:
        result = fn(*num_args)
    except (ArithmeticError, ValueError) as err:
        raise ValueError(f"{who}: {op_name}{tuple(num_args)!r} is undefined ({err}).") from err
    if isinstance(result, complex):
        raise ValueError(f"{who}: {op_name}{tuple(num_args)!r} is not a real number ({result}).")
    return result


def _constant(arg):
    """The value of a MathQA constant (``const_100``, ``const_0_25``, ``const_pi``), or None."""
    if arg in _NAMED_CONSTS:
        return _NAMED_CONSTS[arg]
    match = _CONST.match(arg)
    if match is None:
        return None
    sign, whole, fraction = match.groups()
    return float(f"{sign}{whole}.{fraction or 0}")


def _parse_op(op, who):
    """``(op_name, [argument strings])`` of ``'name(arg,arg)'``."""
    if not isinstance(op, str):
        raise TypeError(f"{who}: each operation must be a string such as 'divide(n0,n1)', "
                        f"got {type(op).__name__} {op!r}.")
    match = _OP.match(op)
    if match is None:
        raise ValueError(f"{who}: expected an operation such as 'divide(n0,n1)', got {op!r}.")
    name, args = match.groups()
    return name, [arg.strip() for arg in args.split(",")] if args.strip() else []


def _argument(arg, op, step, who):
    """``('#', k)``, ``('n', k)`` or ``('const', value)`` for one argument of operation `step`."""
    if re.fullmatch(r"#\d+", arg):
        k = int(arg[1:])
        if k >= step:
            raise ValueError(f"{who}: {op!r} (operation {step}) refers to {arg}, the result of "
                             f"operation {k}; only #0..#{step - 1} are computed before it.")
        return "#", k
    if re.fullmatch(r"n\d+", arg):
        return "n", int(arg[1:])
    value = _constant(arg)
    if value is None:
        raise ValueError(f"{who}: {op!r} has argument {arg!r}; expected a number of the text "
                         "(n0, n1, ...), a previous result (#0, #1, ...) or a constant "
                         "(const_100, const_0_25, const_pi, const_deg_to_rad).")
    return "const", value


def _check_ops(list_op, who):
    if isinstance(list_op, str):
        raise TypeError(f"{who}: list_op must be a list of operations, got the string {list_op!r} "
                        "(compute_ops splits a linear_formula into one).")


def compute_result(list_op, list_num):
    """Runs a MathQA program; returns the result of each operation (the last is the answer).

    Args:
      list_op: operations such as ``['divide(n0,n1)', 'multiply(#0,const_100)']``.
      list_num: the numbers ``n0, n1, ...`` of the problem (`compute_nums`).

    >>> compute_result(['add(n0,n1)', 'multiply(#0,const_0_5)'], [3.0, 5.0])
    [8.0, 4.0]
    """
    who = _P + "compute_result"
    _check_ops(list_op, who)
    results = []
    for step, op in enumerate(list_op):
        name, args = _parse_op(op, who)
        values = []
        for arg in args:
            kind, value = _argument(arg, op, step, who)
            if kind == "#":
                value = results[value]
            elif kind == "n":
                if value >= len(list_num):
                    raise ValueError(f"{who}: {op!r} refers to {arg}, but the problem has "
                                     f"{len(list_num)} number(s): {list(list_num)!r}.")
                value = list_num[value]
            values.append(value)
        results.append(compute_single_result(name, values))
    return results


def _is_zero(arg):
    try:
        return float(arg) == 0
    except (TypeError, ValueError):
        return False


def single_op_to_python_command(op_name, num_args):
    """The Python expression of one MathQA operation on argument names or values.

    Like `compute_single_result`, ``divide`` and ``inverse`` by a literal
    zero give ``'0'`` (Trax wrote ``'x / 0.0'``, which fails when run).

    >>> single_op_to_python_command('circle_area', ['n0'])
    'math.pi * n0**2'
    >>> single_op_to_python_command('speed_in_still_water', ['t0', 'n1'])
    '(t0 + n1) / 2'
    """
    who = _P + "single_op_to_python_command"
    _, _, template = _operation(op_name, num_args, who)
    if op_name in ("divide", "speed") and _is_zero(num_args[1]):
        return "0"
    if op_name == "inverse" and _is_zero(num_args[0]):
        return "0"
    args = [f"({arg})" if str(arg).startswith("-") else str(arg) for arg in num_args]
    return template.format(*args)


def compute_program(list_op):
    """Translates a MathQA program to Python: one ``'tK = ...'`` line per operation.

    ``nK`` stay names (the problem's numbers), ``#K`` become ``tK``, constants
    their values.

    >>> compute_program(['multiply(n0,const_pi)', 'power(#0,const_2)'])
    ['t0 = n0 * 3.141592653589793', 't1 = t0**min(2.0, 5)']
    """
    who = _P + "compute_program"
    _check_ops(list_op, who)
    lines = []
    for step, op in enumerate(list_op):
        name, args = _parse_op(op, who)
        names = []
        for arg in args:
            kind, value = _argument(arg, op, step, who)
            names.append(f"t{value}" if kind == "#" else f"n{value}" if kind == "n" else str(value))
        lines.append(f"t{step} = {single_op_to_python_command(name, names)}")
    return lines


def compute_nums(question):
    """The numbers in a text, as floats (``4,000`` is 4000.0).

    >>> compute_nums('the price of 4,000 pens rose by 12.5 % in 2 years')
    [4000.0, 12.5, 2.0]
    """
    if not isinstance(question, str):
        raise TypeError(f"{_P}compute_nums: expected a string, got {type(question).__name__} {question!r}.")
    return [float(num.replace(",", "")) for num in _NUMBER.findall(question)]


def compute_ops(linear_formula):
    """Splits a MathQA ``linear_formula`` at ``|`` into operations (without a trailing empty one).

    >>> compute_ops('divide(n0,n1)|multiply(#0,const_100)|')
    ['divide(n0,n1)', 'multiply(#0,const_100)']
    """
    if not isinstance(linear_formula, str):
        raise TypeError(f"{_P}compute_ops: expected a string such as 'divide(n0,n1)|', got "
                        f"{type(linear_formula).__name__} {linear_formula!r}.")
    list_op = linear_formula.split("|")
    return list_op[:-1] if not list_op[-1] else list_op


# ------------------------------------------------------------------ MathQA examples

_MATHQA_KEYS = ("Problem", "options", "correct", "linear_formula")


def _check_example(example, keys, who, where="the example", text_keys=()):
    """`example` is a dict with `keys`, those of `text_keys` holding strings."""
    if not isinstance(example, dict):
        raise TypeError(f"{who}: {where} must be a dict with keys {list(keys)}, got "
                        f"{type(example).__name__}.")
    missing = [key for key in keys if key not in example]
    if missing:
        raise ValueError(f"{who}: {where} has no {missing} (expected keys {list(keys)}, got "
                         f"{sorted(example)}).")
    for key in text_keys:
        if not isinstance(example[key], str):
            raise TypeError(f"{who}: {where} has {key!r} {example[key]!r} "
                            f"({type(example[key]).__name__}); expected a string.")


def _option_answer(options, correct):
    """The number of option `correct` in an options string ``'a ) 38 , b ) 1 / 2 , ...'``."""
    start = re.search(rf"(?<![A-Za-z]){re.escape(correct)}\s*\)", options)
    if start is None:
        return None
    text = options[start.end():]
    following = re.search(r",\s*[A-Za-z]\s*\)", text)
    text = text[:following.start()] if following else text
    numbers = list(_NUMBER.finditer(text))
    if not numbers:
        return None  # e.g. "e ) none of these"
    value = float(numbers[0].group().replace(",", ""))
    fraction = re.match(r"\s*/\s*(" + _NUMBER.pattern + ")", text[numbers[0].end():])
    if fraction:
        denominator = float(fraction.group(1).replace(",", ""))
        value = value / denominator if denominator else value
    return value


def process_single_mathqa_example(example):
    """Runs a MathQA example's program and reads its declared answer.

    Args:
      example: a dict of the MathQA JSON files, with keys ``Problem`` (the
        text), ``options`` (``'a ) 38 , b ) 27.675 , ...'``), ``correct``
        (the correct option's letter), ``linear_formula`` (the program, e.g.
        ``'divide(n0,n1)|'``); ``Rationale``, ``annotated_formula`` and
        ``category`` are not used here.

    Returns:
      ``(answer_num, python_result, python_program, list_op, list_num)``: the
      correct option's number (a fraction ``1 / 2`` is 0.5), the result of
      each operation (`compute_result`; the last should be close to
      ``answer_num``), the program in Python (`compute_program`), the
      operations, and the numbers of the text. None when the correct option
      holds no number (``'e ) none of these'``) or is not in ``options``.

    Raises:
      ValueError: for a program that cannot run (see `compute_result`).

    >>> example = {'Problem': 'a train travels 60 km in 1.5 hours . find its speed .',
    ...            'options': 'a ) 30 kmph , b ) 40 kmph , c ) 45 kmph , d ) 90 kmph , e ) none',
    ...            'correct': 'b', 'linear_formula': 'divide(n0,n1)|'}
    >>> process_single_mathqa_example(example)
    (40.0, [40.0], ['t0 = n0 / n1'], ['divide(n0,n1)'], [60.0, 1.5])
    """
    who = _P + "process_single_mathqa_example"
    _check_example(example, _MATHQA_KEYS, who)
    for key in _MATHQA_KEYS:
        if not isinstance(example[key], str):
            raise TypeError(f"{who}: the example's {key!r} must be a string, got "
                            f"{type(example[key]).__name__} {example[key]!r}.")
    list_num = compute_nums(example["Problem"])
    list_op = compute_ops(example["linear_formula"])
    answer_num = _option_answer(example["options"], example["correct"].strip())
    if answer_num is None:
        return None
    if not list_op:
        raise ValueError(f"{who}: the example's linear_formula {example['linear_formula']!r} "
                         "has no operations.")
    python_result = compute_result(list_op, list_num)
    python_program = compute_program(list_op)
    return answer_num, python_result, python_program, list_op, list_num


def convert_float_to_mathqa(number):
    """A number as a MathQA constant: 3.13 is ``'const_3_13'``, 40 ``'const_40'``.

    Goes by value (Trax gave ``'const_40_'`` for the string ``'40'`` and
    ``'const_3_0'`` for ``'3.0'``); negative numbers are ``'const_-2_5'``
    (-2.5). A string is read exactly, without rounding through a float, and
    trailing zeros are dropped (``'0.10'`` is ``'const_0_1'``; Trax:
    ``'const_0_10'``).

    >>> convert_float_to_mathqa('3.13'), convert_float_to_mathqa(40.0), convert_float_to_mathqa(1e-05)
    ('const_3_13', 'const_40', 'const_0_00001')
    """
    who = _P + "convert_float_to_mathqa"
    if isinstance(number, bool):
        raise TypeError(f"{who}: expected a number or a numeric string, got {number!r}.")
    try:
        if isinstance(number, str):
            value = decimal.Decimal(number.strip().replace(",", ""))
        elif isinstance(number, (int, np.integer)):
            value = decimal.Decimal(int(number))
        elif isinstance(number, np.floating):
            value = decimal.Decimal(str(number))  # the shortest digits of its own precision
        else:
            value = decimal.Decimal(repr(float(number)))  # the shortest digits of the float
    except (decimal.InvalidOperation, TypeError, ValueError) as err:
        raise ValueError(f"{who}: expected a number or a numeric string, got "
                         f"{type(number).__name__} {number!r}.") from err
    if not value.is_finite():
        raise ValueError(f"{who}: expected a finite number, got {number!r}.")
    text = format(value.normalize(), "f")
    if text.startswith("-") and value == 0:
        text = text[1:]
    whole, _, fraction = text.partition(".")
    return f"const_{whole}_{fraction}" if fraction else f"const_{whole}"


def convert_to_subtract(const_string):
    """Wraps a MathQA constant as a one-operation program: ``'subtract(const_3_13,const_0)'``.

    >>> convert_to_subtract(convert_float_to_mathqa('3.13'))
    'subtract(const_3_13,const_0)'
    """
    if not isinstance(const_string, str) or not const_string:
        raise TypeError(f"{_P}convert_to_subtract: expected a constant string such as 'const_3_13', "
                        f"got {const_string!r}.")
    return f"subtract({const_string},const_0)"
