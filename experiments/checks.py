"""The one check that a value is a whole number in range, shared by the configuration, the data and the flags."""
import numbers


def is_count(value, minimum=1):
    """Whether value is an int (a NumPy integer too, never a bool) of at least minimum."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum
