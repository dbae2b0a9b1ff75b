"""Tests of `pax_trax.data.mathqa`: MathQA programs, and the MathQA / AQuA / DROP streams.

The data are small JSON files written here by hand in each dataset's own
format (MathQA's JSON arrays, AQuA's and annotated DROP's JSON lines), with
problems whose answers are computed by hand in the comments. `CreateDropInputs`
reads TFDS's own ``'drop'`` dataset: TFDS's DROP builder (its
``_generate_examples`` parses DROP's original JSON) is prepared from a local
file into a temporary data_dir, and read back by the name ``'drop'`` with
download=False.
"""

import itertools
import json
import math
import re
import time
from pathlib import Path

import numpy as np
import pytest

from pax_trax.data import _lazy, drop_inputs
from pax_trax.data import mathqa as mq
from pax_trax.data._mathqa_programs import _OPS
from pax_trax.data.mathqa import _python_code_target, _run_python_code

# ------------------------------------------------------------------ operations


@pytest.mark.parametrize("op, args, expected", [
    ("add", [2, 3], 5),
    ("subtract", [10.0, 4.0], 6.0),
    ("multiply", [2.5, 4.0], 10.0),
    ("divide", [9.0, 4.0], 2.25),
    ("divide", [9.0, 0.0], 0),  # MathQA's safe division
    ("inverse", [4.0], 0.25),
    ("inverse", [0.0], 0),
    ("circle_area", [2.0], 4 * math.pi),
    ("circumface", [1.0], 2 * math.pi),
    ("circle_arc", [90.0, 2.0], math.pi),  # a quarter of the circumference 4 pi
    ("circle_sector_area", [2.0, 90.0], math.pi),  # a quarter of the area 4 pi
    ("triangle_area_three_edges", [3.0, 4.0, 5.0], 6.0),  # Heron: s = 6, sqrt(6 * 3 * 2 * 1)
    ("triangle_area", [3.0, 4.0], 6.0),
    ("rectangle_perimeter", [3.0, 4.0], 14.0),
    ("diagonal", [3.0, 4.0], 5.0),
    ("permutation", [5.0, 2.0], 20.0),  # 5 * 4
    ("permutation", [2.0, 5.0], 20.0),  # the order of the arguments does not matter
    ("permutation", [5.5, 2.7], 60.0),  # Trax: int(5.5)! / int(5.5 - 2.7)! = 5! / 2!
    ("choose", [5.0, 2.0], 10.0),
    ("choose", [2.0, 5.0], 0.0),  # as scipy.special.comb
    ("gcd", [12.0, 18.0], 6),
    ("lcm", [4.0, 6.0], 12),
    ("power", [2.0, 10.0], 32.0),  # the exponent is capped at 5
    ("factorial", [20.0], math.factorial(15)),  # the argument is capped at 15
    ("factorial", [4.0], 24),
    ("log", [8.0], 3.0),
    ("floor", [3.7], 3),
    ("reminder", [17.0, 5.0], 2.0),
    ("percent", [25.0, 80.0], 20.0),
    ("from_percent", [12.5], 0.125),
    ("gain_percent", [20.0], 120.0),
    ("loss_percent", [20.0], 80.0),
    ("price_after_gain", [25.0, 400.0], 500.0),
    ("p_after_gain", [25.0, 400.0], 500.0),
    ("price_after_loss", [25.0, 400.0], 300.0),
    ("original_price_before_gain", [25.0, 500.0], 400.0),
    ("speed_in_still_water", [10.0, 2.0], 6.0),
    ("stream_speed", [10.0, 2.0], 4.0),
    ("speed_ratio_steel_to_stream", [10.0, 2.0], 1.5),
    ("combined_work", [2.0, 3.0], 1 / (1 / 2 + 1 / 3)),  # 6/5 of a day together
    ("find_work", [2.0, 3.0], 1 / (1 / 2 - 1 / 3)),  # 6
    ("count_interval", [10.0, 3.0], 8.0),
    ("square_edge_by_perimeter", [20.0], 5.0),
    ("square_edge_by_area", [25.0], 5.0),
    ("cube_edge_by_volume", [27.0], 3.0),
    ("surface_cube", [2.0], 24.0),
    ("surface_rectangular_prism", [1.0, 2.0, 3.0], 22.0),
    ("volume_rectangular_prism", [1.0, 2.0, 3.0], 6.0),
    ("volume_cone", [3.0, 1.0], 3 * math.pi),
    ("volume_sphere", [3.0], 36 * math.pi),
    ("quadrilateral_area", [4.0, 3.0, 5.0], 16.0),
    ("trapezium_area", [4.0, 3.0, 5.0], 16.0),
    ("union_prob", [0.5, 0.4, 0.2], 0.7),
    ("negate_prob", [0.25], 0.75),
    ("semi_circle_perimiter", [1.0], math.pi + 2),
    ("sqrt", [-4.0], 0.0),  # clamped at 0
    ("max", [3.0, 7.0], 7.0),
    ("negate", [3.0], -3.0),
])
def test_compute_single_result_by_hand(op, args, expected):
    assert mq.compute_single_result(op, args) == pytest.approx(expected, rel=1e-12)


# The operations of Trax's table (trax/data/tf_inputs.py, compute_single_result).
TRAX_OPS = """add circle_arc circle_area circle_sector_area circumface choose cosine cube_edge_by_volume
combined_work count_interval diagonal divide speed factorial floor find_work from_percent gain_percent gcd
inverse lcm log loss_percent max multiply negate_percent negate original_price_before_loss
original_price_before_gain permutation power percent price_after_gain p_after_gain price_after_loss
quadrilateral_area reminder rectangle_area rectangle_perimeter rhombus_area sine sqrt subtract
square_edge_by_perimeter square_edge_by_area square_area surface_cube surface_rectangular_prism
semi_circle_perimiter square_perimeter rhombus_perimeter surface_sphere speed_ratio_steel_to_stream
speed_in_still_water stream_speed trapezium_area triangle_area triangle_perimeter triangle_area_three_edges
union_prob negate_prob volume_cube volume_cone volume_cylinder volume_rectangular_prism volume_sphere""".split()


def test_every_operation_computes_what_its_python_command_computes():
    """Each operation's Python expression, run on named arguments, gives its computed result."""
    rng = np.random.default_rng(0)
    assert set(_OPS) == set(TRAX_OPS)
    for op, (arity, _, _) in sorted(_OPS.items()):
        for _ in range(5):
            values = [float(v) for v in rng.integers(2, 9, size=arity)]
            if op == "speed_ratio_steel_to_stream" and values[0] == values[1]:
                values[1] += 1
            names = [f"n{i}" for i in range(arity)]
            expected = mq.compute_single_result(op, values)
            got = eval(mq.single_op_to_python_command(op, names), {"math": math},
                       dict(zip(names, values)))
            assert got == pytest.approx(expected, rel=1e-12), (op, values)


def test_compute_single_result_errors_name_the_function_and_the_problem():
    who = "pax_trax.data.compute_single_result"
    with pytest.raises(ValueError, match=f"{who}: unknown MathQA operation 'triple'.*expected one of add,"):
        mq.compute_single_result("triple", [1.0])
    with pytest.raises(ValueError, match=f"{who}: 'add' takes 2 argument.*got 3"):
        mq.compute_single_result("add", [1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match=f"{who}: the arguments of 'add' must be numbers"):
        mq.compute_single_result("add", ["1", 2.0])
    with pytest.raises(TypeError, match=f"{who}: num_args must be a list"):
        mq.compute_single_result("circle_area", 2.0)
    with pytest.raises(ValueError, match=r"square_edge_by_area\(-4.0,\) is undefined \(math domain error\)"):
        mq.compute_single_result("square_edge_by_area", [-4.0])
    with pytest.raises(ValueError, match="reminder.*is undefined"):
        mq.compute_single_result("reminder", [5.0, 0.0])
    with pytest.raises(ValueError, match="is not a real number"):
        mq.compute_single_result("cube_edge_by_volume", [-8.0])
    start = time.perf_counter()
    with pytest.raises(ValueError, match="choose.*undefined.*too large"):  # refused, not computed for minutes
        mq.compute_single_result("choose", [1e7, 5e6])
    with pytest.raises(ValueError, match="permutation.*undefined.*too large"):
        mq.compute_single_result("permutation", [1e7, 5e6])
    assert time.perf_counter() - start < 1


def test_single_op_to_python_command():
    assert mq.single_op_to_python_command("divide", ["n0", "n1"]) == "n0 / n1"
    assert mq.single_op_to_python_command("divide", ["n0", "0.0"]) == "0"  # as compute_single_result
    assert mq.single_op_to_python_command("inverse", ["0"]) == "0"
    assert mq.single_op_to_python_command("square_area", ["-2.5"]) == "(-2.5)**2"  # -2.5**2 would be -6.25
    assert mq.single_op_to_python_command("gcd", ["n0", "t1"]) == "math.gcd(int(n0), int(t1))"
    assert mq.single_op_to_python_command("max", ["n0", "t1"]) == "max(n0,t1)"  # Trax's text
    assert mq.single_op_to_python_command("square_edge_by_perimeter", ["n0"]) == "n0 / 4."
    # Real arguments run as computed (Trax's int(m)! / int(m - n)!): 5! / 2! = 60.
    assert eval(mq.single_op_to_python_command("permutation", ["5.5", "2.7"]), {"math": math}) == 60.0
    with pytest.raises(ValueError, match="pax_trax.data.single_op_to_python_command: unknown MathQA"):
        mq.single_op_to_python_command("mean", ["n0", "n1"])
    with pytest.raises(ValueError, match="single_op_to_python_command: 'circle_area' takes 1"):
        mq.single_op_to_python_command("circle_area", [])


# ------------------------------------------------------------------ programs

# The example of Trax's docstring: a percentage of a percentage.
FORMULA = "multiply(n2,const_100)|multiply(n0,n1)|divide(#0,#1)|multiply(#2,const_100)|divide(#3,#1)|"


def test_compute_result_by_hand():
    nums = [2.0, 5.0, 3.0]
    # #0 = 3 * 100 = 300; #1 = 2 * 5 = 10; #2 = 300 / 10 = 30; #3 = 30 * 100 = 3000; #4 = 3000 / 10 = 300
    assert mq.compute_result(mq.compute_ops(FORMULA), nums) == [300.0, 10.0, 30.0, 3000.0, 300.0]
    assert mq.compute_result(["multiply(n0,const_pi)"], [2.0]) == [2 * math.pi]
    assert mq.compute_result(["multiply(n0,const_deg_to_rad)"], [180.0]) == [pytest.approx(math.pi)]
    assert mq.compute_result(["add(const_0_25,const_3_6)", "multiply(#0, const_1000)"], []) == [
        pytest.approx(3.85), pytest.approx(3850.0)]  # spaces after commas are allowed
    assert mq.compute_result([], [1.0]) == []


def test_compute_result_errors():
    who = "pax_trax.data.compute_result"
    with pytest.raises(ValueError, match=rf"{who}: 'add\(n0,n3\)' refers to n3, but the problem has 2"):
        mq.compute_result(["add(n0,n3)"], [1.0, 2.0])
    with pytest.raises(ValueError, match=rf"{who}: 'add\(#1,n0\)' \(operation 1\) refers to #1.*only #0..#0"):
        mq.compute_result(["add(n0,n1)", "add(#1,n0)"], [1.0, 2.0])
    with pytest.raises(ValueError, match=rf"{who}: 'add\(x1,n0\)' has argument 'x1'; expected"):
        mq.compute_result(["add(x1,n0)"], [1.0])
    with pytest.raises(ValueError, match=f"{who}: expected an operation such as 'divide.*got 'add n0 n1'"):
        mq.compute_result(["add n0 n1"], [1.0, 2.0])
    with pytest.raises(TypeError, match=f"{who}: list_op must be a list of operations, got the string"):
        mq.compute_result("add(n0,n1)|", [1.0, 2.0])
    with pytest.raises(ValueError, match="compute_single_result: unknown MathQA operation 'mean'"):
        mq.compute_result(["mean(n0,n1)"], [1.0, 2.0])


def test_compute_program_runs_to_the_same_results():
    program = mq.compute_program(mq.compute_ops(FORMULA))
    assert program == ["t0 = n2 * 100.0", "t1 = n0 * n1", "t2 = t0 / t1", "t3 = t2 * 100.0", "t4 = t3 / t1"]
    variables = {"n0": 2.0, "n1": 5.0, "n2": 3.0}
    exec("\n".join(program), {}, variables)
    assert [variables[f"t{i}"] for i in range(5)] == mq.compute_result(mq.compute_ops(FORMULA), [2.0, 5.0, 3.0])
    assert mq.compute_program(["circle_area(const_0_5)"]) == ["t0 = math.pi * 0.5**2"]
    with pytest.raises(ValueError, match="pax_trax.data.compute_program: 'add\\(#0,n0\\)' \\(operation 0\\)"):
        mq.compute_program(["add(#0,n0)"])


def test_compute_nums_and_compute_ops():
    assert mq.compute_nums("4,000 people paid rs . 1.5 each , -3 degrees , .5 kg , 2e3 m") == [
        4000.0, 1.5, -3.0, 0.5, 2000.0]
    assert mq.compute_nums("no numbers here") == []
    assert mq.compute_ops("add(n0,n1)|subtract(#0,n2)|") == ["add(n0,n1)", "subtract(#0,n2)"]
    assert mq.compute_ops("add(n0,n1)") == ["add(n0,n1)"]
    with pytest.raises(TypeError, match="pax_trax.data.compute_nums: expected a string"):
        mq.compute_nums(12)
    with pytest.raises(TypeError, match="pax_trax.data.compute_ops: expected a string"):
        mq.compute_ops(["add(n0,n1)"])


# ------------------------------------------------------------------ MathQA problems

TRAIN = {  # speed = 60 / 1.5 = 40
    "Problem": "a train travels 60 km in 1.5 hours . find its speed in km / hr .",
    "Rationale": '"speed = distance / time = 60 / 1.5 = 40 km / hr . answer : b"',
    "options": "a ) 30 , b ) 40 , c ) 45 , d ) 90 , e ) none of these",
    "correct": "b",
    "annotated_formula": "divide(n0, n1)",
    "linear_formula": "divide(n0,n1)|",
    "category": "physics",
}
SHOP = {  # 400 * 25 = 10000, / 100 = 100, 400 + 100 = 500
    "Problem": "a shopkeeper buys an article for rs . 400 and sells it at a profit of 25 % . "
               "find the selling price .",
    "Rationale": '"profit = 25 % of 400 = 100 . selling price = 400 + 100 = 500 . answer : b"',
    "options": "a ) rs . 450 , b ) rs . 500 , c ) rs . 525 , d ) rs . 550 , e ) none of these",
    "correct": "b",
    "annotated_formula": "add(400, divide(multiply(400, 25), const_100))",
    "linear_formula": "multiply(n0,n1)|divide(#0,const_100)|add(n0,#1)|",
    "category": "gain",
}
WRONG = {  # Trax's example of a wrong program: 85184 * 352 is not 242
    "Problem": "calculate 85184 ÷ ? = 352",
    "Rationale": '"85184 / 352 = 242 answer : c"',
    "options": "a ) 218 , b ) 236 , c ) 242 , d ) 256 , e ) 264",
    "correct": "c",
    "annotated_formula": "multiply(85184, 352)",
    "linear_formula": "multiply(n0,n1)|",
    "category": "general",
}
NONE_OF_THESE = {  # the correct option has no number: skipped
    "Problem": "if 3 x = 12 , what is x + 1 ?",
    "Rationale": '"x = 4 , x + 1 = 5 . answer : e"',
    "options": "a ) 3 , b ) 4 , c ) 6 , d ) 7 , e ) none of these",
    "correct": "e",
    "annotated_formula": "add(divide(12, 3), const_1)",
    "linear_formula": "divide(n1,n0)|add(#0,const_1)|",
    "category": "general",
}
COIN = {  # 0.5 ** 2 = 1 / 4 (a fraction answer)
    "Problem": "a coin is tossed 2 times . what is the probability of getting heads both times ?",
    "Rationale": '"1 / 2 * 1 / 2 = 1 / 4 . answer : b"',
    "options": "a ) 1 / 2 , b ) 1 / 4 , c ) 1 / 8 , d ) 3 / 4 , e ) 1",
    "correct": "b",
    "annotated_formula": "power(const_0_5, 2)",
    "linear_formula": "power(const_0_5,n0)|",
    "category": "probability",
}
UNKNOWN_OP = {  # an operation outside the table: skipped
    "Problem": "the average of 4 and 6 is ?",
    "Rationale": '"( 4 + 6 ) / 2 = 5 answer : a"',
    "options": "a ) 5 , b ) 6 , c ) 7 , d ) 8 , e ) 9",
    "correct": "a",
    "annotated_formula": "mean(4, 6)",
    "linear_formula": "mean(n0,n1)|",
    "category": "general",
}
ROPE = {  # 100 / 3 = 33.333..., declared 33.33: relative difference 1e-4
    "Problem": "a 100 m rope is cut into 3 equal pieces . how long is each piece ?",
    "Rationale": '"100 / 3 = 33.33 m answer : a"',
    "options": "a ) 33.33 m , b ) 30 m , c ) 25 m , d ) 50 m , e ) 20 m",
    "correct": "a",
    "annotated_formula": "divide(100, 3)",
    "linear_formula": "divide(n0,n1)|",
    "category": "geometry",
}
CIRCLE = {  # pi * 7 ** 2 = 153.938...
    "Problem": "the radius of a circle is 7 cm . find its area .",
    "Rationale": '"area = pi * 7 * 7 = 153.94 answer : a"',
    "options": "a ) 153.94 , b ) 144 , c ) 49 , d ) 22 , e ) 154.5",
    "correct": "a",
    "annotated_formula": "circle_area(7)",
    "linear_formula": "circle_area(n0)|",
    "category": "geometry",
}
TRAIN_FILE = [TRAIN, SHOP, WRONG, NONE_OF_THESE, COIN, UNKNOWN_OP, ROPE, CIRCLE]
KEPT = [TRAIN, SHOP, COIN, ROPE, CIRCLE]  # with the default tolerance
DEV = {**TRAIN, "Problem": "a car travels 150 km in 2.5 hours . find its speed in km / hr .",
       "options": "a ) 50 , b ) 60 , c ) 65 , d ) 75 , e ) none of these", "correct": "b"}


def prefix(problem):
    return problem["Problem"] + "".join(f" n{i} = {num}" for i, num in enumerate(mq.compute_nums(problem["Problem"])))


def test_process_single_mathqa_example():
    assert mq.process_single_mathqa_example(SHOP) == (
        500.0, [10000.0, 100.0, 500.0], ["t0 = n0 * n1", "t1 = t0 / 100.0", "t2 = n0 + t1"],
        ["multiply(n0,n1)", "divide(#0,const_100)", "add(n0,#1)"], [400.0, 25.0])
    assert mq.process_single_mathqa_example(COIN)[:2] == (0.25, [0.25])
    assert mq.process_single_mathqa_example(WRONG)[:2] == (242.0, [85184.0 * 352.0])
    assert mq.process_single_mathqa_example(NONE_OF_THESE) is None
    # The number of the correct option is read from its own text only (Trax read d's 7 for c).
    inadequate = {**TRAIN, "options": "a ) 30 , b ) 40 , c ) data inadequate , d ) 7", "correct": "c"}
    assert mq.process_single_mathqa_example(inadequate) is None
    assert mq.process_single_mathqa_example({**TRAIN, "correct": "f"}) is None
    assert mq.process_single_mathqa_example({**COIN, "options": "a)1/2,b)1/4,c)1/8"})[0] == 0.25
    assert mq.process_single_mathqa_example({**TRAIN, "options": "a ) 4,000 , b ) 40"}, )[0] == 40.0
    assert mq.process_single_mathqa_example({**TRAIN, "correct": "a", "options": "a ) 4,000 , b ) 40"})[0] == 4000.0


def test_process_single_mathqa_example_errors():
    who = "pax_trax.data.process_single_mathqa_example"
    with pytest.raises(ValueError, match=rf"{who}: the example has no \['linear_formula'\]"):
        mq.process_single_mathqa_example({k: v for k, v in TRAIN.items() if k != "linear_formula"})
    with pytest.raises(TypeError, match=f"{who}: the example must be a dict"):
        mq.process_single_mathqa_example([TRAIN])
    with pytest.raises(TypeError, match=f"{who}: the example's 'options' must be a string"):
        mq.process_single_mathqa_example({**TRAIN, "options": ["a ) 30", "b ) 40"]})
    with pytest.raises(ValueError, match="unknown MathQA operation 'mean'"):
        mq.process_single_mathqa_example(UNKNOWN_OP)
    with pytest.raises(ValueError, match=f"{who}: the example's linear_formula '' has no operations"):
        mq.process_single_mathqa_example({**TRAIN, "linear_formula": ""})


@pytest.mark.parametrize("number, expected", [
    ("3.13", "const_3_13"), (3.13, "const_3_13"), ("40", "const_40"), (40.0, "const_40"), (40, "const_40"),
    ("0.25", "const_0_25"), ("0.10", "const_0_1"), (-2.5, "const_-2_5"), (1e-05, "const_0_00001"),
    (1e16, "const_10000000000000000"), ("4,000", "const_4000"), (np.float32(0.5), "const_0_5"),
    (np.float32(0.1), "const_0_1"), (-0.0, "const_0"),
])
def test_convert_float_to_mathqa(number, expected):
    assert mq.convert_float_to_mathqa(number) == expected


@pytest.mark.parametrize("value", [3.13, 40.0, 0.25, -2.5, 1e-05, 153.94, 0.3333, 1234567.875])
def test_mathqa_constants_round_trip_through_compute_result(value):
    program = mq.convert_to_subtract(mq.convert_float_to_mathqa(value))
    assert mq.compute_result([program], []) == [value]


def test_convert_errors():
    with pytest.raises(ValueError, match="pax_trax.data.convert_float_to_mathqa: expected a number.*'abc'"):
        mq.convert_float_to_mathqa("abc")
    with pytest.raises(ValueError, match="convert_float_to_mathqa: expected a finite number"):
        mq.convert_float_to_mathqa(float("nan"))
    with pytest.raises(TypeError, match="convert_float_to_mathqa: expected a number"):
        mq.convert_float_to_mathqa(True)
    assert mq.convert_to_subtract("const_3_13") == "subtract(const_3_13,const_0)"
    with pytest.raises(TypeError, match="pax_trax.data.convert_to_subtract: expected a constant string"):
        mq.convert_to_subtract(3.13)


# ------------------------------------------------------------------ CreateMathQAInputs


@pytest.fixture
def mathqa_dir(tmp_path):
    (tmp_path / "train.json").write_text(json.dumps(TRAIN_FILE, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "dev.json").write_text(json.dumps([DEV]), encoding="utf-8")
    return tmp_path


def first(stream_fn, n, within=None):
    take = lambda: list(itertools.islice(stream_fn(), n))
    return within(30, take) if within else take()


def pairs(examples):
    return [(inputs, target) for inputs, target, _ in examples]


def test_mathqa_full_calculation_keeps_the_correct_examples(mathqa_dir, within):
    examples = first(mq.CreateMathQAInputs(str(mathqa_dir), cumulative=False), 2 * len(KEPT), within)
    expected = [("infer full calculation: " + prefix(p), p["linear_formula"]) for p in KEPT]
    assert pairs(examples) == expected * 2  # endless: the second pass repeats the first
    assert pairs(examples)[0] == ("infer full calculation: a train travels 60 km in 1.5 hours . find its speed "
                                  "in km / hr . n0 = 60.0 n1 = 1.5", "divide(n0,n1)|")
    for _, target, weights in examples:
        assert weights.dtype == np.int64 and weights.tolist() == [1] * len(target)


def test_mathqa_tolerance_filters_by_relative_difference(mathqa_dir, within):
    # ROPE is off by 1e-4 relative, CIRCLE by 1.4e-5 (153.94 vs 153.938), TRAIN, SHOP, COIN exact.
    for tolerance, kept in [(0.01, KEPT), (1e-3, KEPT), (2e-5, [TRAIN, SHOP, COIN, CIRCLE]),
                            (1e-6, [TRAIN, SHOP, COIN])]:
        stream = mq.CreateMathQAInputs(str(mathqa_dir), cumulative=False, tolerance=tolerance)
        assert [t for _, t, _ in first(stream, len(kept), within)] == [p["linear_formula"] for p in kept]
    # WRONG's program gives 29984768, 123904 times its answer: only an absurd tolerance keeps it.
    stream = mq.CreateMathQAInputs(str(mathqa_dir), cumulative=False, tolerance=2.0)
    assert "infer full calculation: " + prefix(WRONG) in [i for i, _, _ in first(stream, 6, within)]


def test_mathqa_cumulative_with_partial_results(mathqa_dir, within):
    examples = pairs(first(mq.CreateMathQAInputs(str(mathqa_dir)), 7, within))
    shop = prefix(SHOP)
    assert examples == [
        (prefix(TRAIN), "divide(n0,n1)"),
        (shop, "multiply(n0,n1)"),
        (shop + " multiply(n0,n1) #0 = 10000.0", "divide(#0,const_100)"),
        (shop + " multiply(n0,n1) #0 = 10000.0 divide(#0,const_100) #1 = 100.0", "add(n0,#1)"),
        (prefix(COIN), "power(const_0_5,n0)"),
        (prefix(ROPE), "divide(n0,n1)"),
        (prefix(CIRCLE), "circle_area(n0)"),
    ]
    assert shop == ("a shopkeeper buys an article for rs . 400 and sells it at a profit of 25 % . find the "
                    "selling price . n0 = 400.0 n1 = 25.0")


def test_mathqa_cumulative_without_partial_results_and_with_qed(mathqa_dir, within):
    examples = pairs(first(mq.CreateMathQAInputs(str(mathqa_dir), partial_results=False, qed=True), 6, within))
    shop = prefix(SHOP)
    assert examples == [
        (prefix(TRAIN), "divide(n0,n1)"),
        (prefix(TRAIN) + " divide(n0,n1)", "qed"),
        (shop, "multiply(n0,n1)"),
        (shop + " multiply(n0,n1)", "divide(#0,const_100)"),
        (shop + " multiply(n0,n1) divide(#0,const_100)", "add(n0,#1)"),
        (shop + " multiply(n0,n1) divide(#0,const_100) add(n0,#1)", "qed"),
    ]


def test_mathqa_python_code(mathqa_dir, within):
    examples = pairs(first(mq.CreateMathQAInputs(str(mathqa_dir), cumulative=False, python_code=True), 5, within))
    assert [inputs for inputs, _ in examples] == ["# " + prefix(p) for p in KEPT]
    codes = dict(zip(("train", "shop", "coin", "rope", "circle"), (code for _, code in examples)))
    assert codes["train"] == "n0 = 60.0\nn1 = 1.5\n\nanswer = n0 / n1"
    assert codes["shop"] == "n0 = 400.0\nn1 = 25.0\nt0 = n0 * n1\nt1 = t0 / 100.0\nanswer = n0 + t1"
    assert codes["circle"] == "import math\nn0 = 7.0\n\nanswer = math.pi * n0**2"
    for (code, problem) in zip(codes.values(), KEPT):
        variables = {}
        exec(code, variables)
        answer = mq.process_single_mathqa_example(problem)[0]
        assert math.isclose(variables["answer"], answer, rel_tol=0.01)


HERON = {  # s = (3 + 4 + 5) / 2 = 6, sqrt(6 * 3 * 2 * 1) = 6
    "Problem": "the sides of a triangle are 3 cm , 4 cm and 5 cm . find its area .",
    "Rationale": '"s = 6 , area = sqrt ( 6 * 3 * 2 * 1 ) = 6 answer : a"',
    "options": "a ) 6 , b ) 12 , c ) 7.5 , d ) 10 , e ) 20",
    "correct": "a",
    "annotated_formula": "triangle_area_three_edges(3, 4, 5)",
    "linear_formula": "triangle_area_three_edges(n0,n1,n2)|",
    "category": "geometry",
}


def test_mathqa_python_code_of_herons_formula(tmp_path, within):
    """The generated program's lambda (Heron's formula) sees its `import math` when the stream runs it."""
    (tmp_path / "train.json").write_text(json.dumps([HERON]))
    examples = pairs(first(mq.CreateMathQAInputs(str(tmp_path), cumulative=False, python_code=True), 2, within))
    code = ("import math\nn0 = 3.0\nn1 = 4.0\nn2 = 5.0\n\nanswer = (lambda s, a, b, c: math.sqrt(max(0, s * (s - a) "
            "* (s - b) * (s - c))))((n0 + n1 + n2) / 2, n0, n1, n2)")
    assert examples == [("# " + prefix(HERON), code)] * 2


def test_every_operation_runs_as_the_python_code_of_a_stream():
    """Each one-operation program, as CreateMathQAInputs writes and runs it, gives compute_result's answer."""
    rng = np.random.default_rng(1)
    for op, (arity, _, _) in sorted(_OPS.items()):
        nums = [float(v) for v in rng.choice(np.arange(2, 12), size=arity, replace=False)]  # distinct
        list_op = [f"{op}({','.join(f'n{i}' for i in range(arity))})", "multiply(#0,const_2)"]
        code = _python_code_target(mq.compute_program(list_op), nums)
        assert _run_python_code(code) == pytest.approx(mq.compute_result(list_op, nums)[-1], rel=1e-12), op


def test_mathqa_rationale_category_and_answers(mathqa_dir, within):
    path = str(mathqa_dir)
    rationale = pairs(first(mq.CreateMathQAInputs(path, cumulative=False, nlp_rationale=True), 5, within))
    assert rationale == [("infer full rationale: " + prefix(p), p["Rationale"]) for p in KEPT]
    cats = pairs(first(mq.CreateMathQAInputs(path, cumulative=False, category=True), 5, within))
    assert cats == [("infer category: " + prefix(p), p["category"]) for p in KEPT]
    answers = pairs(first(mq.CreateMathQAInputs(path, cumulative=False, correct_answer=True), 5, within))
    assert answers == [("infer correct answer: " + prefix(p) + " " + p["options"], target) for p, target in zip(
        KEPT, ["subtract(const_40,const_0)", "subtract(const_500,const_0)", "subtract(const_0_25,const_0)",
               "subtract(const_33_33,const_0)", "subtract(const_153_94,const_0)"])]
    letters = pairs(first(mq.CreateMathQAInputs(path, cumulative=False, correct_answer=True,
                                                answer_in_mathqa_format=False), 5, within))
    assert [t for _, t in letters] == ["b", "b", "b", "a", "a"]
    given = pairs(first(mq.CreateMathQAInputs(path, cumulative=False, correct_answer_given_reasoning=True),
                        2, within))
    assert given[1] == ("infer correct answer given reasoning: " + prefix(SHOP)
                        + " multiply(n0,n1) divide(#0,const_100) add(n0,#1) " + SHOP["options"], "b")


def test_mathqa_order_prediction(mathqa_dir, within):
    path = str(mathqa_dir)
    head = "order prediction: " + prefix(SHOP) + " "
    names = ["multiply", "divide", "add"]
    stream = mq.CreateMathQAInputs(path, cumulative=False, order_prediction=True, seed=3)
    examples = pairs(first(stream, 5 * 200, within))
    assert examples[:10] == pairs(first(stream, 10))  # each call starts from the seed
    seen = {"ordered": 0, "not_ordered": 0}
    for inputs, target in examples[1::5]:  # the SHOP problem, three operations
        assert inputs.startswith(head)
        ops = inputs[len(head):].split(" ")
        assert sorted(ops) == sorted(names)
        assert (ops == names) == (target == "ordered")
        if target == "not_ordered":
            assert sum(a != b for a, b in zip(ops, names)) == 2  # one swap
        seen[target] += 1
    assert 70 < seen["ordered"] < 130  # probability 0.5 in 200 draws
    assert {t for _, t in examples[0::5]} == {"ordered"}  # one operation: never swapped
    assert examples[0][0] == "order prediction: " + prefix(TRAIN) + " divide"
    other = pairs(first(mq.CreateMathQAInputs(path, cumulative=False, order_prediction=True, seed=4), 1000, within))
    assert other != examples
    full = pairs(first(mq.CreateMathQAInputs(path, cumulative=False, order_prediction=True,
                                             reduced_operation_name=False, seed=3), 10, within))
    assert [t for _, t in full] == [t for _, t in examples[:10]]
    assert full[1][0].startswith(head) and "divide(#0,const_100)" in full[1][0]


def test_mathqa_dev_split_and_url_paths(mathqa_dir, within):
    examples = pairs(first(mq.CreateMathQAInputs(str(mathqa_dir), train=False, cumulative=False), 2, within))
    assert examples == [("infer full calculation: " + prefix(DEV), "divide(n0,n1)|")] * 2
    assert prefix(DEV).endswith("n0 = 150.0 n1 = 2.5")
    # A path with a scheme is read with tf.io.gfile (as Trax, for gs:// buckets).
    url = mathqa_dir.resolve().as_uri()
    assert pairs(first(mq.CreateMathQAInputs(url, train=False, cumulative=False), 1, within)) == examples[:1]
    with pytest.raises(FileNotFoundError, match="CreateMathQAInputs: no file 'file:///.*/nothing/train.json'"):
        mq.CreateMathQAInputs(url + "/nothing")


def test_mathqa_errors(tmp_path, within):
    who = "pax_trax.data.CreateMathQAInputs"
    with pytest.raises(ValueError, match=f"{who}: dataset_path is required"):
        mq.CreateMathQAInputs()
    with pytest.raises(FileNotFoundError, match=f"{who}: no file '.*train.json' \\(MathQA's train.json"):
        mq.CreateMathQAInputs(str(tmp_path))
    (tmp_path / "train.json").write_text("[{not json")
    with pytest.raises(ValueError, match=f"{who}: '.*train.json' is not JSON"):
        mq.CreateMathQAInputs(str(tmp_path))
    (tmp_path / "train.json").write_text(json.dumps({"Problem": "x"}))
    with pytest.raises(ValueError, match=f"{who}: '.*train.json' holds a dict; expected a JSON array"):
        mq.CreateMathQAInputs(str(tmp_path))
    (tmp_path / "train.json").write_text(json.dumps([TRAIN, {k: v for k, v in TRAIN.items() if k != "category"}]))
    mq.CreateMathQAInputs(str(tmp_path))  # the category is only needed for category=True
    with pytest.raises(ValueError, match=rf"{who}: problem 1 of '.*train.json' has no \['category'\]"):
        mq.CreateMathQAInputs(str(tmp_path), cumulative=False, category=True)
    with pytest.raises(ValueError, match=f"{who}: tolerance must be a number >= 0"):
        mq.CreateMathQAInputs(str(tmp_path), tolerance=-1)
    # A field of the wrong type: an error naming the problem now, not a crash at some next().
    (tmp_path / "train.json").write_text(json.dumps([TRAIN, {**SHOP, "Problem": 400}]))
    with pytest.raises(TypeError, match=rf"{who}: problem 1 of '.*train.json' has 'Problem' 400 \(int\); "
                                        "expected a string"):
        mq.CreateMathQAInputs(str(tmp_path))
    # No usable problem: an error after one pass, not an endless loop.
    (tmp_path / "train.json").write_text(json.dumps([WRONG, UNKNOWN_OP, NONE_OF_THESE]))
    stream = mq.CreateMathQAInputs(str(tmp_path))
    with pytest.raises(ValueError, match=f"{who}: a whole pass over '.*train.json' gave no example .*none of "
                                         "its 3 problems"):
        within(30, lambda: next(stream()))


# ------------------------------------------------------------------ CreateAquaInputs

AQUA = [
    {"question": "Two friends plan to walk along a 43-km trail, starting at opposite ends of the trail at the "
                 "same time. If Friend P's rate is 15% faster than Friend Q's, how many kilometers will "
                 "Friend P have walked when they pass each other?",
     "options": ["A)21", "B)21.5", "C)22", "D)22.5", "E)23"],
     "rationale": "If Q complete x kilometers, then P completes 1.15x kilometers.\nx + 1.15x = 43\n"
                  "2.15x=43\nx = 43/2.15 = 20\nThen P will have have walked 1.15*20=23 km.\nThe answer is E.",
     "correct": "E"},
    {"question": "In the coordinate plane, points (x, 1) and (5, y) are on line k. If line k passes through "
                 "the origin and has slope 1/5, then what are the values of x and y respectively?",
     "options": ["A)4 and 1", "B)1 and 5", "C)5 and 1", "D)3 and 5", "E)5 and 3"],
     "rationale": "Line k passes through the origin and has slope 1/5 means that its equation is y=1/5*x.\n"
                  "Thus: (x, 1)=(5, 1) and (5, y) = (5,1) -->x=5 and y=1\nAnswer: C",
     "correct": "C"},
]


@pytest.fixture
def aqua_dir(tmp_path):
    (tmp_path / "train.json").write_text("".join(json.dumps(p) + "\n" for p in AQUA) + "\n")
    (tmp_path / "dev.json").write_text(json.dumps(AQUA[1]) + "\n")
    return tmp_path


def test_aqua_tasks(aqua_dir, within):
    path = str(aqua_dir)
    q0, q1 = AQUA[0]["question"], AQUA[1]["question"]
    steps0 = AQUA[0]["rationale"].split("\n")
    assert pairs(first(mq.CreateAquaInputs(path, rationale=True), 3, within)) == [
        ("infer full rationale: " + q0, AQUA[0]["rationale"]), ("infer full rationale: " + q1, AQUA[1]["rationale"]),
        ("infer full rationale: " + q0, AQUA[0]["rationale"])]
    assert pairs(first(mq.CreateAquaInputs(path, correct_answer=True), 2, within)) == [
        ("infer correct answer: " + q0 + " A)21 B)21.5 C)22 D)22.5 E)23", "E"),
        ("infer correct answer: " + q1 + " A)4 and 1 B)1 and 5 C)5 and 1 D)3 and 5 E)5 and 3", "C")]
    cumulative = pairs(first(mq.CreateAquaInputs(path, cumulative=True), 6 + 3, within))
    assert cumulative[:6] == [("infer cumulative rationale: " + " ".join([q0] + steps0[:i]), steps0[i])
                              for i in range(6)]
    assert cumulative[2] == ("infer cumulative rationale: " + q0 + " If Q complete x kilometers, then P completes "
                             "1.15x kilometers. x + 1.15x = 43", "2.15x=43")
    assert [t for _, t in cumulative[6:]] == AQUA[1]["rationale"].split("\n")
    full = pairs(first(mq.CreateAquaInputs(path, correct_answer_given_reasoning=True, partial_reasoning=False), 1))
    assert full == [("infer correct answer given reasoning: " + q0 + " " + AQUA[0]["rationale"]
                     + " A)21 B)21.5 C)22 D)22.5 E)23", "E")]
    dev = pairs(first(mq.CreateAquaInputs(path, train=False, correct_answer=True), 1, within))
    assert dev[0][1] == "C" and dev[0][0].startswith("infer correct answer: In the coordinate plane")
    weights = first(mq.CreateAquaInputs(path, rationale=True), 1)[0][2]
    assert weights.tolist() == [1] * len(AQUA[0]["rationale"]) and weights.dtype == np.int64


def test_aqua_partial_reasoning_is_a_random_prefix(aqua_dir, within):
    stream = mq.CreateAquaInputs(str(aqua_dir), correct_answer_given_reasoning=True, seed=0)
    examples = pairs(first(stream, 400, within))
    assert pairs(first(stream, 20)) == examples[:20]
    head = "infer correct answer given reasoning: " + AQUA[0]["question"] + " "
    tail = " A)21 B)21.5 C)22 D)22.5 E)23"
    steps = AQUA[0]["rationale"].split("\n")
    lengths = set()
    for inputs, target in examples[0::2]:
        assert inputs.startswith(head) and inputs.endswith(tail) and target == "E"
        reasoning = inputs[len(head):-len(tail)]
        n = 0 if not reasoning else reasoning.count("\n") + 1
        assert reasoning == "\n".join(steps[:n])
        lengths.add(n)
    assert lengths == set(range(len(steps)))  # 0 .. all but one step, as Trax's randint


def test_aqua_order_prediction(aqua_dir, within):
    examples = pairs(first(mq.CreateAquaInputs(str(aqua_dir), order_prediction=True, seed=1), 400, within))
    head = "order prediction: " + AQUA[0]["question"] + " "
    steps = AQUA[0]["rationale"].split("\n")
    counts = {"ordered": 0, "not_ordered": 0}
    for inputs, target in examples[0::2]:
        got = inputs[len(head):].split("\n")
        assert inputs.startswith(head) and sorted(got) == sorted(steps)
        assert sum(a != b for a, b in zip(got, steps)) == (0 if target == "ordered" else 2)
        counts[target] += 1
    assert 70 < counts["ordered"] < 130


def test_aqua_errors(tmp_path, aqua_dir):
    who = "pax_trax.data.CreateAquaInputs"
    with pytest.raises(ValueError, match=f"{who}: one of cumulative, rationale, .* must be True"):
        mq.CreateAquaInputs(str(aqua_dir))
    with pytest.raises(FileNotFoundError, match=f"{who}: no file '.*empty/train.json' \\(AQuA's"):
        mq.CreateAquaInputs(str(tmp_path / "empty"), rationale=True)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.json").write_text(json.dumps(AQUA[0]) + "\n{oops\n")
    with pytest.raises(ValueError, match=f"{who}: line 2 of '.*train.json' is not JSON"):
        mq.CreateAquaInputs(str(bad), rationale=True)
    (bad / "train.json").write_text(json.dumps({**AQUA[0], "options": "A)21 B)22"}) + "\n")
    with pytest.raises(TypeError, match=f"{who}: problem 0 of .* has options 'A\\)21 B\\)22'; expected a list"):
        mq.CreateAquaInputs(str(bad), rationale=True)
    (bad / "train.json").write_text(json.dumps({**AQUA[0], "rationale": ["step 1", "step 2"]}) + "\n")
    with pytest.raises(TypeError, match=f"{who}: problem 0 of .* has 'rationale' \\['step 1', 'step 2'\\] "
                                        "\\(list\\); expected a string"):
        mq.CreateAquaInputs(str(bad), rationale=True)
    (bad / "train.json").write_text(json.dumps({"question": "q"}) + "\n")
    with pytest.raises(ValueError, match=rf"{who}: problem 0 of .* has no \['rationale', 'options', 'correct'\]"):
        mq.CreateAquaInputs(str(bad), rationale=True)


# ------------------------------------------------------------------ CreateDropInputs

NO_DATE = {"day": "", "month": "", "year": ""}
DROP_PASSAGE = ("Hoping to rebound from their loss to the Patriots, the Raiders stayed at home for a Week 16 duel "
                "with the Houston Texans. Oakland would get the early lead in the first quarter as quarterback "
                "JaMarcus Russell completed a 20-yard touchdown pass to rookie wide receiver Chaz Schilens.")
DROP_JSON = {
    "nfl_1184": {
        "passage": DROP_PASSAGE,
        "qa_pairs": [
            {"question": "How many yards was the touchdown pass?", "query_id": "f37e81fa",
             "answer": {"number": "20", "date": NO_DATE, "spans": []}},
            {"question": "Who caught the touchdown pass?", "query_id": "9d95b5b3",
             "answer": {"number": "", "date": NO_DATE, "spans": ["Chaz Schilens"]}},
            {"question": "How many yards per second was the pass in 5.6 seconds?", "query_id": "1b2c3d4e",
             "answer": {"number": "3.5", "date": NO_DATE, "spans": []}},
            {"question": "When was the game?", "query_id": "aa11bb22",
             "answer": {"number": "", "date": {"day": "21", "month": "12", "year": "2008"}, "spans": []}},
            {"question": "What did the Raiders not say?", "query_id": "cc33dd44",  # empty answer: skipped
             "answer": {"number": "", "date": NO_DATE, "spans": []}},
        ],
    },
}
DROP_TARGETS = {"20": "subtract(const_20,const_0)", "Chaz Schilens": "Chaz Schilens",
                "3.5": "subtract(const_3_5,const_0)", "2008-12-21": "2008-12-21"}


@pytest.fixture(scope="module")
def drop_dir(tmp_path_factory):
    """A data_dir holding TFDS's 'drop' 2.0.0, prepared by TFDS's builder from a local file."""
    tfds = _lazy.tensorflow_datasets("tests")
    root = tmp_path_factory.mktemp("drop")
    train, dev = root / "drop_dataset_train.json", root / "drop_dataset_dev.json"
    train.write_text(json.dumps(DROP_JSON))
    dev_json = {"nfl_1184": {**DROP_JSON["nfl_1184"], "qa_pairs": DROP_JSON["nfl_1184"]["qa_pairs"][1:2]}}
    dev.write_text(json.dumps(dev_json))

    class LocalDrop(tfds.builder_cls("drop"), skip_registration=True):
        """TFDS's DROP builder, reading DROP's JSON from local files instead of downloading."""

        name = "drop"

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(Path(train)), "dev": self._generate_examples(Path(dev))}

    data_dir = str(root / "tfds")
    LocalDrop(data_dir=data_dir).download_and_prepare()
    return data_dir


def test_drop_inputs_read_tfds_drop(drop_dir, within):
    stream = mq.CreateDropInputs(data_dir=drop_dir, download=False)
    examples = first(stream, 8, within)
    by_question = {inputs: target for inputs, target, _ in examples}
    assert len(by_question) == 4 and len(set(pairs(examples))) == 4  # the empty answer is skipped; endless
    questions = {qa["question"]: qa for qa in DROP_JSON["nfl_1184"]["qa_pairs"]}
    for inputs, target in by_question.items():
        assert inputs.startswith("drop question: " + DROP_PASSAGE + " ")
        assert questions[inputs[len("drop question: " + DROP_PASSAGE + " "):]]
        assert target in DROP_TARGETS
    assert by_question["drop question: " + DROP_PASSAGE + " Who caught the touchdown pass?"] == "Chaz Schilens"
    assert by_question["drop question: " + DROP_PASSAGE + " When was the game?"] == "2008-12-21"
    for _, target, weights in examples:
        assert weights.dtype == np.int32 and weights.tolist() == [1] * len(target)
    mathqa = first(mq.CreateDropInputs(data_dir=drop_dir, download=False, mathqa_format=True), 4, within)
    assert sorted(t for _, t, _ in mathqa) == sorted(DROP_TARGETS.values())
    dev = pairs(first(mq.CreateDropInputs(train=False, data_dir=drop_dir, download=False), 2, within))
    assert dev == [("drop question: " + DROP_PASSAGE + " Who caught the touchdown pass?", "Chaz Schilens")] * 2


def test_drop_mathqa_format_converts_plain_numbers_only():
    texts = ["40", "3.13", ".5", "1.2.3", "-4", "10²", "²", "4,000", "a1"]
    assert [drop_inputs._is_plain_number(t) for t in texts] == [
        True, True, True, False, False, False, False, False, False]


def test_drop_inputs_not_prepared_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="pax_trax.data.CreateDropInputs: dataset 'drop' is not prepared"):
        mq.CreateDropInputs(data_dir=str(tmp_path), download=False)


# ------------------------------------------------------------------ CreateAnnotatedDropInputs

PRELATURE = ("The Prelature building was erected in 1983; it was inaugurated on 4 March 1984. The auction in 1994 "
             "sold the art collection that Vahram Utidjian had donated to the Prelature in 1954.")
ANNOTATED = [
    {"passage": PRELATURE, "question": "How many years after the collection was donated was it sold?",
     "answer": 40, "calculation": "subtract(n3,n4)"},
    {"passage": PRELATURE, "question": "How many years after it was erected was the building inaugurated?",
     "answer": 1, "calculation": "subtract(n2,n0)"},
    {"passage": "In 2010 the town had 4,500 people; by 2020 it had 5,250.", "question": "How many more people?",
     "answer": 750, "calculation": "subtract(n3,n1)"},
    {"input": "old prompt: A farm has 12 cows and 7 goats. How many animals? n0 = 12.0 n1 = 7.0",
     "calculation": "add(n0,n1)"},
]
PRELATURE_NUMBERS = " n0 = 1983.0 n1 = 4.0 n2 = 1984.0 n3 = 1994.0 n4 = 1954.0"


def annotated_inputs(example):
    if "input" in example:
        return "drop annotated question: " + example["input"][len("old prompt: "):]
    text = example["passage"] + " " + example["question"]
    nums = [float(n.replace(",", "")) for n in re.findall(r"-?\d+(?:,\d{3})*(?:\.\d+)?", text)]
    return "drop annotated question: " + text + "".join(f" n{i} = {v}" for i, v in enumerate(nums))


def write_lines(path, examples):
    path.write_text("".join(json.dumps(e) + "\n" for e in examples))


def test_annotated_drop_by_hand(tmp_path, within):
    write_lines(tmp_path / "train_annotated.json", ANNOTATED)
    examples = first(mq.CreateAnnotatedDropInputs(str(tmp_path)), 8, within)
    assert pairs(examples) == [(annotated_inputs(e), e["calculation"]) for e in ANNOTATED] * 2
    assert examples[0][0] == ("drop annotated question: " + PRELATURE + " How many years after the collection was "
                              "donated was it sold?" + PRELATURE_NUMBERS)
    assert examples[2][0].endswith("How many more people? n0 = 2010.0 n1 = 4500.0 n2 = 2020.0 n3 = 5250.0")
    assert examples[3][0] == ("drop annotated question: A farm has 12 cows and 7 goats. How many animals? "
                              "n0 = 12.0 n1 = 7.0")
    # The calculations are MathQA programs over these numbers: 1994 - 1954 = 40, 1984 - 1983 = 1, ...
    for (_, target, weights), example in zip(examples, ANNOTATED):
        assert weights.dtype == np.int32 and weights.tolist() == [1] * len(target)
        if "answer" in example:
            numbers = mq.compute_nums(example["passage"] + " " + example["question"])
            assert mq.compute_result([target], numbers) == [example["answer"]]


def test_annotated_drop_unique_total_and_percentile(tmp_path, within):
    write_lines(tmp_path / "train_annotated.json", ANNOTATED)
    path = str(tmp_path)
    unique = pairs(first(mq.CreateAnnotatedDropInputs(path, unique=True), 6, within))
    assert [t for _, t in unique] == ["subtract(n3,n4)", "subtract(n3,n1)", "add(n0,n1)"] * 2
    bounded = pairs(first(mq.CreateAnnotatedDropInputs(path, total_number_of_samples=2), 6, within))
    assert [t for _, t in bounded] == ["subtract(n3,n4)", "subtract(n2,n0)"] * 3
    half = pairs(first(mq.CreateAnnotatedDropInputs(path, percentile=0.5), 4, within))
    assert [t for _, t in half] == ["subtract(n3,n4)", "subtract(n2,n0)"] * 2
    three = pairs(first(mq.CreateAnnotatedDropInputs(path, percentile=0.8), 3, within))  # int(4 * 0.8) = 3
    assert [t for _, t in three] == ["subtract(n3,n4)", "subtract(n2,n0)", "subtract(n3,n1)"]


def test_annotated_drop_dev_directory_and_reloading(tmp_path, within):
    write_lines(tmp_path / "dev_annotated.json", ANNOTATED[2:3])
    dev = pairs(first(mq.CreateAnnotatedDropInputs(str(tmp_path), train=False, single_file=False), 2, within))
    assert dev == [(annotated_inputs(ANNOTATED[2]), "subtract(n3,n1)")] * 2  # dev: always the one file
    folder = tmp_path / "parts"
    folder.mkdir()
    write_lines(folder / "b.json", ANNOTATED[1:2])
    write_lines(folder / "a.jsonl", ANNOTATED[0:1])
    (folder / "notes.txt").write_text("not an example\n")
    stream = mq.CreateAnnotatedDropInputs(str(folder), single_file=False)()
    assert [next(stream)[1] for _ in range(2)] == ["subtract(n3,n4)", "subtract(n2,n0)"]  # a.jsonl, then b.json
    # Each pass reads the files again: an example written meanwhile is in the next pass.
    write_lines(folder / "c.json", ANNOTATED[3:4])
    assert [within(10, lambda: next(stream))[1] for _ in range(3)] == ["subtract(n3,n4)", "subtract(n2,n0)",
                                                                      "add(n0,n1)"]


def test_annotated_drop_errors(tmp_path, within):
    who = "pax_trax.data.CreateAnnotatedDropInputs"
    with pytest.raises(FileNotFoundError, match=f"{who}: no file '.*train_annotated.json' \\(annotated DROP"):
        mq.CreateAnnotatedDropInputs(str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"{who}: no directory '.*missing'"):
        mq.CreateAnnotatedDropInputs(str(tmp_path / "missing"), single_file=False)
    with pytest.raises(ValueError, match=f"{who}: dataset_path is required"):
        mq.CreateAnnotatedDropInputs()
    with pytest.raises(ValueError, match=f"{who}: percentile must be a fraction in \\(0, 1\\], got 0"):
        mq.CreateAnnotatedDropInputs(str(tmp_path), percentile=0)
    with pytest.raises(ValueError, match=f"{who}: total_number_of_samples must be None or an int"):
        mq.CreateAnnotatedDropInputs(str(tmp_path), total_number_of_samples=-1)
    write_lines(tmp_path / "train_annotated.json", [{**ANNOTATED[0], "calculation": None}])
    with pytest.raises(TypeError, match=rf"{who}: an example of '.*' has 'calculation' None \(NoneType\); "
                                        "expected a string"):
        mq.CreateAnnotatedDropInputs(str(tmp_path))
    write_lines(tmp_path / "train_annotated.json", [{"passage": "p", "calculation": "add(n0,n1)"}])
    with pytest.raises(ValueError, match=rf"{who}: an example of '.*' has no \['question'\]"):
        mq.CreateAnnotatedDropInputs(str(tmp_path))
    (tmp_path / "train_annotated.json").write_text("\n")
    stream = mq.CreateAnnotatedDropInputs(str(tmp_path))
    with pytest.raises(ValueError, match=f"{who}: a whole pass over .* gave no example .*0 example"):
        within(10, lambda: next(stream()))
