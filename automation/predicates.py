"""The trigger predicate language: a small, safe expression language over an event.

Predicates look like Python (``task_type == "intake" and new_state == "completed"``) but are never
given to ``eval``/``exec``. The text is parsed with ``ast.parse(mode="eval")``, every node is checked
against a whitelist, and the tree is compiled once into a chain of plain Python closures; evaluating an
event is calling that chain with a dict of names. The compiled form is cached by text.

What is allowed: literals (strings, numbers, booleans, ``None``, lists/tuples/sets of them),
the names in ``NAMES``, ``payload["key"]`` (and nested ``["key"]``/``[0]`` subscripts), comparisons
(``== != < <= > >= in not in``, ``is None``/``is not None``), ``and``/``or``/``not``, ``+ - * / %`` and
the functions in ``FUNCTIONS``. Everything else (attribute access, dunders, imports, any other call,
lambdas, comprehensions, f-strings, ``**``, slices, walrus, starred) is refused when the trigger is saved.

Why evaluation is bounded (docs/automation.md, "Predicate budget"): the language has no loops, no
recursion and no user functions, so an evaluation runs each of at most ``MAX_NODES`` nodes once. What a
node does can still be large (a repetition, a format width, a deep comparison), so there are two checks:

- at compile time, a cost model (``_static_cost``) bounds the size of every value the predicate can build
  from its own literals — deeply, so ``[[[0] * 1000] * 1000] * 1000`` counts 10^9 items, not 1000 — and
  the width/precision of every ``%`` format; a predicate over the bounds is refused with a
  ``PredicateTooCostly`` error (``PREDICATE_TOO_COSTLY``) when the trigger is saved;
- at run time, each evaluation has a budget of ``MAX_STEPS`` work units: every value built is sized
  (deeply, ``MAX_VALUE_SIZE`` items/characters at most) *before* it is allocated where the size is
  knowable (repetition, concatenation, formatting) and charged to the budget, and so is every operation
  whose cost grows with its operands (comparisons and ``in`` over collections, string functions). Over
  budget, the evaluation stops with ``PredicateBudgetExceeded``: the trigger does not match and the
  execution records the error.

``BUDGET_ENABLED`` switches the run-time budget off (the benchmark's "without" arm only).
"""

from __future__ import annotations

import ast
import functools
import math
import operator
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_LENGTH = 2000  # characters of predicate text
MAX_NODES = 200  # AST nodes
MAX_DEPTH = 24  # nesting of the AST
MAX_STRING = 10_000  # characters of any string value a predicate builds
MAX_LITERAL_STRING = 1_000  # characters of a string literal
MAX_COLLECTION = 100  # items in a list/tuple/set literal
MAX_INT_BITS = 64  # magnitude of any integer value a predicate builds
MAX_VALUE_SIZE = 10_000  # items + characters, counted deeply, of any one value a predicate builds
MAX_STEPS = 100_000  # work units one evaluation may spend (see _charge): <= ~10 ms, <= 1 MB built
MAX_FORMAT_WIDTH = 100  # the largest width or precision a "%" format may ask for
# The run-time budget; off only in bench/automation_bench.py's comparison arm.
BUDGET_ENABLED = True

# The names a predicate may read, declared here only: the engine and the backtest fill them. The
# ``PAYLOAD_NAMES`` are copied from the event's payload (``None`` when absent); ``event_type``,
# ``aggregate_type`` and ``depth`` are the event's own fields, ``actor_role`` the actor's role (``system``
# without one), and ``payload`` the whole payload.
PAYLOAD_NAMES = ("old_state", "new_state", "transition", "task_type", "service_area", "priority", "reason")
NAMES = ("event_type", "aggregate_type", *PAYLOAD_NAMES, "actor_role", "depth", "payload")


class PredicateError(Exception):
    """A predicate that cannot be compiled (``position`` is the column, when known) or evaluated."""

    code = "PREDICATE_INVALID"

    def __init__(self, message: str, *, position: int | None = None) -> None:
        self.message = message
        self.position = position
        super().__init__(message if position is None else f"{message} (at column {position})")


class PredicateTooCostly(PredicateError):
    """Refused when compiled: the predicate could build values or do work beyond the budget."""

    code = "PREDICATE_TOO_COSTLY"

    def __init__(self, message: str, *, position: int | None = None) -> None:
        super().__init__(f"{self.code}: {message}", position=position)


class PredicateBudgetExceeded(PredicateError):
    """An evaluation that went over its budget (work units or value size): it does not match."""

    code = "PREDICATE_BUDGET_EXCEEDED"

    def __init__(self, message: str) -> None:
        super().__init__(f"{self.code}: {message}")


# --- the run-time budget ---------------------------------------------------------------------------
# One evaluation at a time per thread; ``_budgeted`` sets the remaining units before each one.
_budget = threading.local()
_budget.remaining = MAX_STEPS
_CONTAINERS = frozenset((list, tuple, set, frozenset, dict))
_SIZED = frozenset((str, *_CONTAINERS))
CONTAINER_UNITS = 16  # what a collection costs for itself, beside one unit per item (Python's overhead)


def _charge(units: int) -> None:
    """Spend ``units`` of the current evaluation's budget; over it, the evaluation stops."""
    if not BUDGET_ENABLED:
        return
    remaining = getattr(_budget, "remaining", MAX_STEPS) - units
    _budget.remaining = remaining
    if remaining < 0:
        raise PredicateBudgetExceeded(f"the evaluation needs more than {MAX_STEPS:,} steps.")


def _size(value: Any, limit: int = MAX_VALUE_SIZE) -> int:
    """The units in ``value``, counted deeply: a string one per character, a collection
    ``CONTAINER_UNITS`` plus one per item plus what its strings and collections hold (a shared inner
    list counts each time it appears, as comparing or copying would). Stops counting past ``limit``,
    so the work is bounded by ``limit``."""
    kind = type(value)
    if kind is str:
        return len(value)
    if kind not in _CONTAINERS:
        return 1
    total = CONTAINER_UNITS + len(value)
    if total > limit:
        return total
    if kind is dict:
        items: Any = (*value.keys(), *value.values())
    else:
        items = value
        if _SIZED.isdisjoint(set(map(type, value))):
            return total  # only numbers, booleans and None inside: found at C speed
    for item in items:
        kind = type(item)
        if kind is str:
            total += len(item)
        elif kind in _CONTAINERS:
            total += _size(item, limit - total)
        if total > limit:
            return total
    return total


def _repeated_size(seq: Any, count: int) -> int:
    """The size of ``seq * count`` (``count`` > 0), computed without building it."""
    if type(seq) is str:
        return len(seq) * count
    return (_size(seq) - CONTAINER_UNITS) * count + CONTAINER_UNITS


def _remaining() -> int:
    return max(getattr(_budget, "remaining", MAX_STEPS), 0) if BUDGET_ENABLED else MAX_STEPS


def _charge_pair(left: Any, right: Any) -> None:
    """Charge a comparison. Values of different types compare at once (or raise); strings cost their
    shorter length; collections cost sizing both (stopping past the budget), which bounds the comparison."""
    kind = type(left)
    if kind is not type(right):
        return
    if kind is str:
        _charge(min(len(left), len(right)))
    elif kind in _CONTAINERS:
        first = _size(left, _remaining() + 1)
        _charge(first)  # over budget already: the other side is never sized
        _charge(_size(right, min(first, _remaining() + 1)))


def _budgeted(evaluate: Evaluator) -> Evaluator:
    """``evaluate`` with a fresh budget for each call (what the engine, dry-run and backtest call)."""

    def budgeted(ns: Mapping[str, Any]) -> Any:
        if BUDGET_ENABLED:
            _budget.remaining = MAX_STEPS
        return evaluate(ns)

    return budgeted


def _check_string(value: Any) -> Any:
    """A value the predicate built: within the size bounds, and charged to the budget."""
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise PredicateBudgetExceeded(f"a string value longer than {MAX_STRING} characters.")
    if type(value) in _SIZED:
        size = _size(value)
        if size > MAX_VALUE_SIZE:
            raise PredicateBudgetExceeded(f"a value of more than {MAX_VALUE_SIZE} items.")
        _charge(size)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise PredicateBudgetExceeded(f"a number larger than {MAX_INT_BITS} bits.")
    if isinstance(value, float) and not math.isfinite(value):
        raise PredicateError("Number is not finite.")
    return value


def _require_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise PredicateError(f"{name}() expects a string, got {type(value).__name__}.")
    return value


def _fn_len(value: Any) -> int:
    if value is None:
        return 0
    if not isinstance(value, str | list | tuple | set | frozenset | dict):
        raise PredicateError(f"len() expects a string or collection, got {type(value).__name__}.")
    return len(value)


def _built_string(name: str, value: Any) -> str:
    """A function's string argument whose result has its length: bounded and charged before building."""
    if len(_require_str(name, value)) > MAX_STRING:
        raise PredicateBudgetExceeded(f"{name}() of a string longer than {MAX_STRING} characters.")
    _charge(len(value))
    return value


def _fn_lower(value: Any) -> str:
    return _built_string("lower", value).lower()


def _fn_upper(value: Any) -> str:
    return _built_string("upper", value).upper()


def _fn_startswith(value: Any, prefix: Any) -> bool:
    _charge(len(_require_str("startswith", prefix)))
    return _require_str("startswith", value).startswith(prefix)


def _fn_endswith(value: Any, suffix: Any) -> bool:
    _charge(len(_require_str("endswith", suffix)))
    return _require_str("endswith", value).endswith(suffix)


def _fn_present(value: Any) -> bool:
    return value is not None and value != ""


# name -> (function, number of arguments). Each is total on bounded inputs and returns bounded output.
FUNCTIONS: dict[str, tuple[Callable[..., Any], int]] = {
    "len": (_fn_len, 1),
    "lower": (_fn_lower, 1),
    "upper": (_fn_upper, 1),
    "startswith": (_fn_startswith, 2),
    "endswith": (_fn_endswith, 2),
    "present": (_fn_present, 1),
}


def _mul(left: Any, right: Any) -> Any:
    # Check a repetition's size before building it: "x" * 10**9 must never allocate, and neither may
    # [[0] * 1000] * 1000 (1000 items on the outside, 10^6 deep: counted deeply).
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(count, int) and count > 0:
            if len(seq) * count > MAX_STRING:
                raise PredicateBudgetExceeded(f"a repetition longer than {MAX_STRING} items.")
            if _repeated_size(seq, count) > MAX_VALUE_SIZE:
                raise PredicateBudgetExceeded(f"a repetition of more than {MAX_VALUE_SIZE} items.")
    return operator.mul(left, right)


def _add(left: Any, right: Any) -> Any:
    sequences = isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple)
    if sequences and len(left) + len(right) > MAX_STRING:
        raise PredicateBudgetExceeded(f"a concatenation longer than {MAX_STRING} items.")
    return operator.add(left, right)


# One "%" conversion: flags, width, precision, length modifier, type (printf-style formatting).
_FORMAT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.?)")


def format_problem(text: str) -> str | None:
    """What makes ``text`` a costly ``%`` format (a width/precision over ``MAX_FORMAT_WIDTH`` or taken
    from the arguments with ``*``), or None. ``"%0300000000d" % 1`` would build 300 MB."""
    for match in _FORMAT_SPEC.finditer(text):
        for number in match.group(1, 2):
            if number == "*":
                return "a '*' width or precision in a '%' format"
            if number and (len(number) > 4 or int(number) > MAX_FORMAT_WIDTH):
                return f"a '%' format width or precision over {MAX_FORMAT_WIDTH} ({number})"
    return None


def _mod(left: Any, right: Any) -> Any:
    if isinstance(left, str):  # printf-style formatting: the widths are checked before formatting
        problem = format_problem(left)
        if problem:
            raise PredicateBudgetExceeded(f"{problem}.")
        _charge(len(left) + _size(right, _remaining() + 1))
    return operator.mod(left, right)


_BINARY = {
    ast.Add: _add,
    ast.Sub: operator.sub,
    ast.Mult: _mul,
    ast.Div: operator.truediv,
    ast.Mod: _mod,
}


def _contains(container: Any, item: Any) -> bool:
    if container is None:
        return False  # `"x" in payload["absent"]` is simply false
    if isinstance(container, str) and not isinstance(item, str):
        return False
    kind = type(container)
    if kind is str:
        _charge(len(container))
    elif kind in (list, tuple):  # a scan; dict and set membership is one hash lookup
        _charge(_size(container, _remaining() + 1))
    return item in container


def _charged(func: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def compare(left: Any, right: Any) -> Any:
        _charge_pair(left, right)
        return func(left, right)

    return compare


_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: _charged(operator.eq),
    ast.NotEq: _charged(operator.ne),
    ast.Lt: _charged(operator.lt),
    ast.LtE: _charged(operator.le),
    ast.Gt: _charged(operator.gt),
    ast.GtE: _charged(operator.ge),
    ast.In: lambda a, b: _contains(b, a),
    ast.NotIn: lambda a, b: not _contains(b, a),
    ast.Is: lambda a, b: a is b,
    ast.IsNot: lambda a, b: a is not b,
}

_OPERATOR_WORDS = {
    ast.Pow: "'**'",
    ast.FloorDiv: "'//'",
    ast.LShift: "'<<'",
    ast.RShift: "'>>'",
    ast.BitOr: "'|'",
    ast.BitAnd: "'&'",
    ast.BitXor: "'^'",
    ast.MatMult: "'@'",
}

_REFUSED_NODES = {
    ast.Attribute: "Attribute access is not allowed",
    ast.Lambda: "Lambdas are not allowed",
    ast.ListComp: "Comprehensions are not allowed",
    ast.SetComp: "Comprehensions are not allowed",
    ast.DictComp: "Comprehensions are not allowed",
    ast.GeneratorExp: "Comprehensions are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.NamedExpr: "Assignment expressions are not allowed",
    ast.Starred: "Starred expressions are not allowed",
    ast.Slice: "Slices are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.IfExp: "Conditional expressions are not allowed; use and/or",
    ast.Dict: "Dict literals are not allowed",
}

Evaluator = Callable[[Mapping[str, Any]], Any]


class _Compiler:
    """Checks one parsed predicate against the whitelist and turns it into closures."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.nodes = 0
        self.names: set[str] = set()
        # Evaluators known to return a constant, or a plain name: the compiler specialises on them.
        self.constants: dict[Evaluator, Any] = {}
        self.name_of: dict[Evaluator, str] = {}

    def constant(self, value: Any) -> Evaluator:
        def evaluate(ns: Mapping[str, Any]) -> Any:
            return value

        self.constants[evaluate] = value
        return evaluate

    def fail(self, node: ast.AST, message: str) -> PredicateError:
        col = getattr(node, "col_offset", None)
        return PredicateError(message, position=None if col is None else col + 1)

    def compile(self, node: ast.AST, depth: int = 0) -> Evaluator:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(node, f"Predicate too complex (more than {MAX_NODES} elements)")
        if depth > MAX_DEPTH:
            raise self.fail(node, f"Predicate nested too deeply (more than {MAX_DEPTH} levels)")
        refused = _REFUSED_NODES.get(type(node))
        if refused:
            raise self.fail(node, refused)
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise self.fail(node, f"{type(node).__name__} is not allowed in predicates")
        return method(node, depth + 1)

    # --- leaves ---
    def _Constant(self, node: ast.Constant, depth: int) -> Evaluator:
        value = node.value
        if isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, str):
            if len(value) > MAX_LITERAL_STRING:
                raise self.fail(node, f"String literal longer than {MAX_LITERAL_STRING} characters")
        elif isinstance(value, int):
            if value.bit_length() > MAX_INT_BITS:
                raise self.fail(node, f"Number literal larger than {MAX_INT_BITS} bits")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise self.fail(node, "Number literal is not finite")
        else:
            raise self.fail(node, f"{type(value).__name__} literals are not allowed")
        return self.constant(value)

    def _Name(self, node: ast.Name, depth: int) -> Evaluator:
        name = node.id
        if name.startswith("_"):
            raise self.fail(node, f"Name {name!r} is not allowed")
        if name not in NAMES:
            hint = " (a function: call it)" if name in FUNCTIONS else ""
            raise self.fail(node, f"Unknown name {name!r}{hint}. Available names: {', '.join(NAMES)}")
        self.names.add(name)

        def evaluate(ns: Mapping[str, Any]) -> Any:
            return ns.get(name)

        self.name_of[evaluate] = name
        return evaluate

    def _collection(self, node: ast.List | ast.Tuple | ast.Set, depth: int, kind: type) -> Evaluator:
        if len(node.elts) > MAX_COLLECTION:
            raise self.fail(node, f"Collection literal with more than {MAX_COLLECTION} items")
        items = [self.compile(elt, depth) for elt in node.elts]
        if all(item in self.constants for item in items):  # fold a literal collection once
            values = tuple(self.constants[item] for item in items)
            try:
                return self.constant(kind(values))
            except TypeError:
                raise self.fail(node, "Sets hold strings, numbers, booleans or None") from None
        return lambda ns: _check_string(kind(item(ns) for item in items))

    def _List(self, node: ast.List, depth: int) -> Evaluator:
        return self._collection(node, depth, list)

    def _Tuple(self, node: ast.Tuple, depth: int) -> Evaluator:
        return self._collection(node, depth, tuple)

    def _Set(self, node: ast.Set, depth: int) -> Evaluator:
        return self._collection(node, depth, frozenset)

    # --- compound ---
    def _Subscript(self, node: ast.Subscript, depth: int) -> Evaluator:
        key_node = node.slice
        if not isinstance(key_node, ast.Constant) or isinstance(key_node.value, bool):
            raise self.fail(node, 'Subscripts take a literal key, as in payload["key"]')
        key = key_node.value
        if not isinstance(key, str | int):
            raise self.fail(node, "Subscript keys are strings or integers")
        if isinstance(key, str) and (key.startswith("__") or len(key) > 200):
            raise self.fail(node, f"Key {key!r} is not allowed")
        self.nodes += 1
        target = self.compile(node.value, depth)

        def subscript(ns: Mapping[str, Any]) -> Any:
            container = target(ns)
            # Missing keys read as None, so predicates over optional payload fields do not error.
            if isinstance(container, dict):
                return container.get(key)
            if isinstance(container, list | tuple | str) and isinstance(key, int):
                return container[key] if -len(container) <= key < len(container) else None
            return None

        return subscript

    def _BoolOp(self, node: ast.BoolOp, depth: int) -> Evaluator:
        parts = [self.compile(value, depth) for value in node.values]
        is_and = isinstance(node.op, ast.And)
        if len(parts) == 2:  # the common case, without a loop
            first, second = parts
            if is_and:
                return lambda ns: first(ns) and second(ns)
            return lambda ns: first(ns) or second(ns)

        def chain(ns: Mapping[str, Any]) -> Any:
            # Python's semantics: stop at the first falsy (and) / truthy (or) operand and return it.
            value: Any = None
            for part in parts:
                value = part(ns)
                if bool(value) is not is_and:
                    return value
            return value

        return chain

    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> Evaluator:
        operand = self.compile(node.operand, depth)
        if isinstance(node.op, ast.USub | ast.UAdd) and operand in self.constants:  # fold -1
            value = _number(self.constants[operand])
            return self.constant(_check_string(-value if isinstance(node.op, ast.USub) else value))
        if isinstance(node.op, ast.Not):
            return lambda ns: not operand(ns)
        if isinstance(node.op, ast.USub):
            return lambda ns: _check_string(-_number(operand(ns)))
        if isinstance(node.op, ast.UAdd):
            return lambda ns: _number(operand(ns))
        raise self.fail(node, "The '~' operator is not allowed")

    def _BinOp(self, node: ast.BinOp, depth: int) -> Evaluator:
        func = _BINARY.get(type(node.op))
        if func is None:
            word = _OPERATOR_WORDS.get(type(node.op), type(node.op).__name__)
            raise self.fail(node, f"The {word} operator is not allowed")
        left, right = self.compile(node.left, depth), self.compile(node.right, depth)
        return lambda ns: _check_string(func(left(ns), right(ns)))

    def _Compare(self, node: ast.Compare, depth: int) -> Evaluator:
        operands = [self.compile(node.left, depth)]
        funcs = []
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.Is | ast.IsNot) and not (
                isinstance(comparator, ast.Constant) and comparator.value is None
            ):
                raise self.fail(node, "'is' and 'is not' compare with None only")
            funcs.append(_COMPARE[type(op)])
            operands.append(self.compile(comparator, depth))
        if len(funcs) == 1:
            return self._compare_one(type(node.ops[0]), funcs[0], operands[0], operands[1])

        def chain(ns: Mapping[str, Any]) -> bool:
            left = operands[0](ns)
            for func, operand in zip(funcs, operands[1:], strict=True):
                right = operand(ns)
                if not func(left, right):
                    return False
                left = right
            return True

        return chain

    def _compare_one(self, op: type, func: Callable, left: Evaluator, right: Evaluator) -> Evaluator:
        """One comparison, specialised for the common ``name == "literal"`` / ``name in (...)`` shapes
        (a dict lookup and a C-level compare instead of three Python calls)."""
        if right not in self.constants:
            return lambda ns: func(left(ns), right(ns))
        value = self.constants[right]
        name = self.name_of.get(left)
        if op in (ast.In, ast.NotIn) and isinstance(value, list | tuple | frozenset):
            members = _hashable_set(value)
            positive = op is ast.In

            def contains(ns: Mapping[str, Any]) -> bool:
                item = ns.get(name) if name is not None else left(ns)
                try:
                    found = item in members if members is not None else item in value
                except TypeError:  # an unhashable value (a list from the payload) is in no set
                    found = item in value
                return found is positive

            return contains
        if name is not None and op is ast.Eq:
            return lambda ns: ns.get(name) == value
        if name is not None and op is ast.NotEq:
            return lambda ns: ns.get(name) != value
        return lambda ns: func(left(ns), value)

    def _Call(self, node: ast.Call, depth: int) -> Evaluator:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node, f"Only these functions may be called: {', '.join(FUNCTIONS)}")
        name = node.func.id
        if name not in FUNCTIONS:
            raise self.fail(node, f"Function {name!r} is not available. Available: {', '.join(FUNCTIONS)}")
        if node.keywords:
            raise self.fail(node, f"{name}() takes no keyword arguments")
        func, arity = FUNCTIONS[name]
        if len(node.args) != arity:
            raise self.fail(node, f"{name}() takes {arity} argument{'s' if arity > 1 else ''}")
        self.nodes += 1
        args = [self.compile(arg, depth) for arg in node.args]
        if arity == 1:
            only = args[0]
            return lambda ns: func(only(ns))
        return lambda ns: func(*(arg(ns) for arg in args))


def _hashable_set(values: list | tuple | frozenset) -> frozenset | None:
    try:
        return frozenset(values)
    except TypeError:
        return None


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PredicateError(f"Expected a number, got {type(value).__name__}.")
    return value


# What a well-formed predicate can still raise on unexpected data (e.g. ``"a" < 1``).
EVALUATION_ERRORS = (TypeError, ValueError, ArithmeticError, RecursionError, MemoryError)


def _truth(evaluate: Evaluator, names: Mapping[str, Any]) -> bool:
    try:
        return bool(evaluate(names))
    except PredicateError:
        raise
    except EVALUATION_ERRORS as exc:
        raise PredicateError(f"Evaluation failed: {exc}") from None


@dataclass(frozen=True)
class Clause:
    text: str
    evaluate: Evaluator


@dataclass(frozen=True)
class Explanation:
    """Dry-run answer: did it match, and if not, which top-level clause stopped it."""

    matched: bool
    failed_clause: str | None
    clauses: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class CompiledPredicate:
    """A validated predicate, ready to evaluate many events. Immutable and shared through the cache."""

    text: str
    evaluate_raw: Evaluator
    names: frozenset[str]
    clauses: tuple[Clause, ...]
    combinator: str  # "and", "or" or "single"
    # (name, strings): the predicate is false whenever ``names[name]`` is a string not in ``strings``,
    # read off a first top-level clause ``name == "x"`` / ``name in ("x", "y")``. The engine indexes
    # triggers by it, so an event only evaluates the triggers that can match it.
    guard: tuple[str, frozenset[str]] | None = None
    # The literal key paths the predicate reads off ``payload`` (``payload["a"]["b"]`` is ``("a", "b")``),
    # or None when it uses the payload otherwise (whole, or through an integer index): a reader may then
    # fetch just these paths instead of decoding every payload (``automation.backtest_scan``).
    payload_paths: frozenset[tuple[str, ...]] | None = None

    def evaluate(self, names: Mapping[str, Any]) -> bool:
        """True when the event (given as its names) matches. Raises ``PredicateError`` on a runtime fault."""
        return _truth(self.evaluate_raw, names)

    def explain(self, names: Mapping[str, Any]) -> Explanation:
        """Evaluate clause by clause (Python's short-circuit order) and name the first one that failed.

        The clauses share one budget, as they do in ``evaluate``."""
        if BUDGET_ENABLED:
            _budget.remaining = MAX_STEPS
        results: list[dict[str, Any]] = []
        for clause in self.clauses:
            try:
                value = _truth(clause.evaluate, names)
            except PredicateError as exc:
                results.append({"clause": clause.text, "result": None, "error": exc.message})
                return Explanation(False, clause.text, results, error=exc.message)
            results.append({"clause": clause.text, "result": value})
            if self.combinator == "or" and value:
                return Explanation(True, None, results)
            if self.combinator != "or" and not value:
                return Explanation(False, clause.text, results)
        if self.combinator == "or":
            return Explanation(False, "none of the alternatives matched", results)
        return Explanation(True, None, results)


_ALWAYS = CompiledPredicate("", lambda ns: True, frozenset(), (), "single")


def _guard_of(first: ast.expr) -> tuple[str, frozenset[str]] | None:
    """The guard of a first clause shaped ``name == "x"`` or ``name in ("x", "y")`` (strings only).

    Only the *first* clause qualifies: when it is false, Python's ``and`` stops there, so skipping the
    predicate changes neither its result nor whether it raises. Only strings: for them ``==`` and set
    membership agree exactly (the engine evaluates in full when the event's value is not a string).
    """
    if not (isinstance(first, ast.Compare) and len(first.ops) == 1 and isinstance(first.left, ast.Name)):
        return None
    name, op, right = first.left.id, first.ops[0], first.comparators[0]
    if name == "payload":
        return None
    if isinstance(op, ast.Eq) and isinstance(right, ast.Constant) and isinstance(right.value, str):
        return name, frozenset([right.value])
    if isinstance(op, ast.In) and isinstance(right, ast.List | ast.Tuple | ast.Set):
        items = right.elts
        if items and all(isinstance(i, ast.Constant) and isinstance(i.value, str) for i in items):
            return name, frozenset(i.value for i in items)  # type: ignore[attr-defined]
    return None


def _payload_paths(root: ast.expr) -> frozenset[tuple[str, ...]] | None:
    """The keys of each ``payload["a"]["b"]`` chain (here ``("a", "b")``), without those a shorter path
    already covers; None when ``payload`` appears other than at the root of a chain of string keys."""
    parents = {child: node for node in ast.walk(root) for child in ast.iter_child_nodes(node)}
    paths = set()
    for node in ast.walk(root):
        if not (isinstance(node, ast.Name) and node.id == "payload"):
            continue
        path: list[str] = []
        current: ast.AST = node
        while (parent := parents.get(current)) is not None and isinstance(parent, ast.Subscript):
            if parent.value is not current:
                break
            key = parent.slice
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                return None  # an integer index: a list inside the payload, read whole
            path.append(key.value)
            current = parent
        if not path:
            return None
        paths.add(tuple(path))
    return frozenset(p for p in paths if not any(p[: len(q)] == q for q in paths if len(q) < len(p)))


def _int_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int


def _static_cost(root: ast.expr) -> None:
    """The compile-time cost model: raise ``PredicateTooCostly`` when the values the predicate builds
    from its own literals (sized deeply, as ``_size`` counts them) could exceed ``MAX_VALUE_SIZE`` each or
    ``MAX_STEPS`` together, or a ``%`` format asks for a width/precision over ``MAX_FORMAT_WIDTH``.

    Sizes that depend on the event (names, subscripts) are unknown here; the run-time budget bounds
    them. ``**``, ``<<``, f-strings and ``str.format`` never get this far (refused by the whitelist).
    """
    total = 0

    def refuse(node: ast.AST, message: str) -> PredicateTooCostly:
        col = getattr(node, "col_offset", None)
        return PredicateTooCostly(message, position=None if col is None else col + 1)

    def built(node: ast.AST, size: int | None) -> int | None:
        nonlocal total
        if size is None:
            return None
        if size > MAX_VALUE_SIZE:
            raise refuse(node, f"it builds a value of {size:,} items (limit {MAX_VALUE_SIZE:,}).")
        total += size
        if total > MAX_STEPS:
            raise refuse(node, f"it builds more than {MAX_STEPS:,} items in all.")
        return size

    def size_of(node: ast.AST) -> tuple[int | None, str | None]:
        """(deep size, None when it depends on the event; "str", "seq" or None for other values)."""
        if isinstance(node, ast.Constant):
            return (len(node.value), "str") if isinstance(node.value, str) else (1, None)
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            total_size: int | None = CONTAINER_UNITS + len(node.elts)
            for elt in node.elts:
                size, kind = size_of(elt)
                if size is None:
                    total_size = None
                elif kind is not None and total_size is not None:
                    total_size += size
            return built(node, total_size), "seq"
        if not isinstance(node, ast.BinOp):
            for child in ast.iter_child_nodes(node):
                size_of(child)
            return None, None
        (left, left_kind), (right, right_kind) = size_of(node.left), size_of(node.right)
        if isinstance(node.op, ast.Mult):
            for size, kind, count in ((left, left_kind, node.right), (right, right_kind, node.left)):
                if kind is not None and size is not None and _int_literal(count):
                    times = max(count.value, 0)  # type: ignore[attr-defined]
                    if kind == "str":
                        return built(node, size * times), kind
                    return built(node, (size - CONTAINER_UNITS) * times + CONTAINER_UNITS), kind
            return None, left_kind or right_kind
        is_format = (
            isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) and left_kind == "str"
        )
        if is_format and (problem := format_problem(node.left.value)):  # type: ignore[attr-defined]
            raise refuse(node, f"{problem}.")
        if (
            isinstance(node.op, ast.Add)
            and left_kind
            and left_kind == right_kind
            and None not in (left, right)
        ):
            extra = 0 if left_kind == "str" else CONTAINER_UNITS
            return built(node, left + right - extra), left_kind  # type: ignore[operator]
        return None, left_kind or right_kind

    size_of(root)


def _parse(text: str) -> ast.Expression:
    if len(text) > MAX_LENGTH:
        raise PredicateError(f"Predicate longer than {MAX_LENGTH} characters.")
    try:
        return ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise PredicateError(f"Syntax error: {exc.msg}", position=exc.offset) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise PredicateError(f"Cannot parse predicate: {exc}") from None


@functools.lru_cache(maxsize=4096)
def predicate_compile(text: str) -> CompiledPredicate:
    """Validate and compile ``text`` (cached by text). Blank text matches every event.

    Raises ``PredicateError`` with a message meant for the person editing the trigger.
    """
    text = text.strip()
    if not text:
        return _ALWAYS
    tree = _parse(text)
    compiler = _Compiler(text)
    try:
        evaluate = compiler.compile(tree.body)
    except RecursionError:
        raise PredicateError("Predicate nested too deeply.") from None
    root = tree.body
    _static_cost(root)
    evaluate = _budgeted(evaluate)
    if isinstance(root, ast.BoolOp):
        combinator = "and" if isinstance(root.op, ast.And) else "or"
        parts = root.values
    else:
        combinator, parts = "single", [root]
    clauses = tuple(
        Clause(ast.get_source_segment(text, part) or ast.unparse(part), _Compiler(text).compile(part))
        for part in parts
    )
    guard = _guard_of(parts[0]) if combinator in ("and", "single") else None
    paths = _payload_paths(root) if "payload" in compiler.names else None
    return CompiledPredicate(text, evaluate, frozenset(compiler.names), clauses, combinator, guard, paths)


def predicate_validate(text: str) -> None:
    """Raise ``PredicateError`` if ``text`` is not a valid predicate (used by ``automation.rules``)."""
    predicate_compile(text or "")
