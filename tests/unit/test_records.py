"""rootless/records.py: `@record` classes are NamedTuples without importing typing."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from rootless.records import record


@record
class Point:
    """A point."""

    x: int
    y: int = 0
    label: str = ""

    @property
    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)

    def moved(self, dx: int) -> "Point":
        return self._replace(x=self.x + dx)


def test_a_record_is_a_tuple_of_its_fields_in_order():
    p = Point(1, 2, "a")
    assert isinstance(p, tuple) and tuple(p) == (1, 2, "a")
    assert Point._fields == ("x", "y", "label")
    assert (p.x, p.y, p.label) == (1, 2, "a")


def test_fields_take_their_defaults():
    assert Point(5) == Point(5, 0, "")
    assert Point._field_defaults == {"y": 0, "label": ""}


def test_methods_and_properties_are_kept():
    assert Point(3, -4).norm1 == 7
    assert Point(1).moved(2) == Point(3)


def test_name_docstring_and_repr_are_the_class_s():
    assert Point.__name__ == "Point" and Point.__qualname__ == "Point"
    assert Point.__doc__ == "A point."
    assert repr(Point(1, 2)) == "Point(x=1, y=2, label='')"


def test_a_record_has_no_instance_dict():
    with pytest.raises(AttributeError):
        Point(1).z = 3


def test_a_record_pickles_by_name():
    assert pickle.loads(pickle.dumps(Point(1, 2))) == Point(1, 2)


def test_a_field_without_a_default_after_one_with_is_refused():
    with pytest.raises(TypeError, match="without a default follows one with"):
        @record
        class Bad:
            a: int = 0
            b: int


def test_records_do_not_import_typing():
    code = ("import sys\nfrom rootless.records import record\n"
            "@record\nclass A:\n    a: int\n    b: 'list[str]' = ()\n"
            "print('typing' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out == "False\n"


def test_fields_may_be_given_by_name():
    assert Point(y=2, x=1) == Point(1, 2)
    assert Point(1, label="b") == Point(1, 0, "b")


def test_a_missing_field_is_refused():
    with pytest.raises(TypeError, match="missing required argument.*'x'"):
        Point(y=1)


def test_an_unknown_or_repeated_field_is_refused():
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        Point(1, z=2)
    with pytest.raises(TypeError, match="multiple values for argument 'x'"):
        Point(1, x=2)
    with pytest.raises(TypeError, match="takes 3 positional arguments but 4"):
        Point(1, 2, "a", 4)


def test_replace_asdict_and_make_are_namedtuple_s():
    p = Point(1, 2)
    assert p._replace(label="c") == Point(1, 2, "c")
    assert p._asdict() == {"x": 1, "y": 2, "label": ""}
    assert Point._make([4, 5, "d"]) == Point(4, 5, "d")
    with pytest.raises(ValueError):
        p._replace(z=1)


def test_a_method_of_the_class_wins_over_namedtuple_s():
    @record
    class Quiet:
        a: int

        def __repr__(self) -> str:
            return "quiet"

    assert repr(Quiet(1)) == "quiet"
