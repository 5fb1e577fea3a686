"""Size caps for values an expression computes: checked on the operands BEFORE an operation whose result could
grow without bound (**, *, % formatting), and on every computed result. Plain variable reads are not capped here:
a run's variables are already bounded by WORKFLOW_MAX_OUTPUT_BYTES."""

import ast

MAX_INT_BITS = 4096  # about 1233 decimal digits
MAX_STR = 100_000  # characters (or bytes) in one string
MAX_ITEMS = 100_000  # items in one list, tuple or dict
MAX_WEIGHT = 2_000_000  # characters + items + integer bytes in one whole (nested) result
MAX_POW = MAX_INT_BITS  # the largest exponent, whatever the base (2 ** MAX_POW is just over the int cap)


class TooLarge(Exception):
    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def weight(value, *, budget: int = MAX_WEIGHT) -> int:
    """Characters + items + integer bytes of a nested value; stops counting once past `budget`."""
    total, stack = 0, [value]
    while stack and total <= budget:
        item = stack.pop()
        total += 1
        if isinstance(item, str | bytes):
            total += len(item)
        elif _is_int(item):
            total += item.bit_length() // 8
        elif isinstance(item, list | tuple | dict):
            total += len(item)
            if total <= budget:
                stack.extend(item.items() if isinstance(item, dict) else item)
    return total


def check(value):
    """Raise TooLarge when a computed value is over a cap; return it unchanged otherwise."""
    if _is_int(value) and value.bit_length() > MAX_INT_BITS:
        raise TooLarge(f"Integer result is too large (more than {MAX_INT_BITS} bits).")
    if isinstance(value, str | bytes) and len(value) > MAX_STR:
        raise TooLarge(f"String result is too large (more than {MAX_STR} characters).")
    if isinstance(value, list | tuple | dict):
        if len(value) > MAX_ITEMS:
            raise TooLarge(f"List result is too large (more than {MAX_ITEMS} items).")
        if weight(value) > MAX_WEIGHT:
            raise TooLarge("Expression result is too large.")
    return value


def _check_pow(base, exponent) -> None:
    if _is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1:
        bits = (abs(base).bit_length() - 1) * exponent + 1  # a lower bound of the result's bit length
        if bits > MAX_INT_BITS:
            raise TooLarge(f"Integer result is too large (more than {MAX_INT_BITS} bits).")
    if isinstance(exponent, int | float) and abs(exponent) > MAX_POW:
        raise TooLarge("Exponent too large.")


def _check_mul(left, right) -> None:
    if _is_int(left) and _is_int(right) and left and right \
            and left.bit_length() + right.bit_length() - 1 > MAX_INT_BITS:
        raise TooLarge(f"Integer result is too large (more than {MAX_INT_BITS} bits).")
    for seq, times in ((left, right), (right, left)):
        if not (isinstance(seq, str | bytes | list | tuple) and _is_int(times)) or times <= 0:
            continue
        if isinstance(seq, str | bytes) and len(seq) * times > MAX_STR:
            raise TooLarge("Repetition result is too large.")
        if isinstance(seq, list | tuple) and (len(seq) * times > MAX_ITEMS
                                              or weight(seq) * times > MAX_WEIGHT):
            raise TooLarge("Repetition result is too large.")


def check_operands(op: ast.operator, left, right) -> None:
    """Refuse an operation whose result would be over a cap, before computing it."""
    if isinstance(op, ast.Pow):
        _check_pow(left, right)
    elif isinstance(op, ast.Mult):
        _check_mul(left, right)
    elif isinstance(op, ast.Mod) and isinstance(left, str | bytes):
        raise TooLarge("String formatting with % is not allowed (its width can make any size).")
