"""What a PostgreSQL server accepts in `parameters:`, checked before anything runs.

The catalogs (`pgtopo/catalog/settings-<major>.tsv`) are pg_settings of each supported image,
written by `scripts/settings-catalog.sh`: name, type, unit, bounds, enum values, context.  The
loader's cross-field checks (`spec.problems`) ask `problem(name, value, major)` for every
parameter of the file, so a misspelt name or an impossible value is refused by `validate`, `diff`
and `apply` with FILE:LINE:COL before any container is touched.

A major with no catalog here (an image tag that does not name one, or a release newer than the
catalogs) is not checked offline: a check that refused a setting the server knows would be worse
than none.  For those, `diff` and `apply` ask the image's own server (image_catalog.py runs the
job, `parse_server_catalog` reads what it printed, in the same format) and the loader checks the
file against that `Catalog`.

Pure: the shipped catalogs are package data, read once.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

# pg_settings' base units, in bytes or microseconds (guc.c's memory_unit_conversion_table and
# time_unit_conversion_table), and the units a value may be written in.
_MEMORY = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_TIME = {"us": 1, "ms": 1000, "s": 1_000_000, "min": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}
_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z]*)\s*$")
# Hidden spellings pg_settings.enumvals does not list: boolean-like enums accept these beside on and
# off (synchronous_commit = true), and wal_level its pre-9.6 names.
_HIDDEN_BOOLEAN = {"true", "false", "yes", "no", "1", "0"}
_HIDDEN = {"wal_level": ("archive", "hot_standby")}


@dataclass(frozen=True)
class Setting:
    name: str
    vartype: str  # bool | integer | real | enum | string
    unit: str  # "" or a base unit such as kB, 8kB, MB, ms, s, min
    min: float | None
    max: float | None
    enumvals: tuple[str, ...]
    context: str  # postmaster | sighup | superuser | user | …


@dataclass(frozen=True)
class Catalog:
    """The settings one server knows, and its major (for messages)."""

    major: int
    settings: Mapping[str, Setting]


@cache
def catalog(major: int) -> dict[str, Setting] | None:
    """The settings PostgreSQL `major` knows; None when pgtopo has no catalog for it."""
    source = resources.files("pgtopo") / "catalog" / f"settings-{major}.tsv"
    if not source.is_file():
        return None
    return parse_catalog(source.read_text(encoding="utf-8"))


def parse_catalog(text: str) -> dict[str, Setting]:
    """One setting a line: name, vartype, unit, min, max, enum values (comma-separated), context,
    tab-separated (pg_settings as `COPY ... TO STDOUT` writes it); raises ValueError on any other line."""
    found = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("\t")
        if len(fields) != 7 or not fields[0] or not fields[1] or not fields[6]:
            raise ValueError(f"line {number} is not a setting: {line[:80]!r}")
        name, vartype, unit, low, high, enumvals, context = fields
        try:
            bounds = (float(low) if low else None, float(high) if high else None)
        except ValueError:
            raise ValueError(f"line {number}: bounds {low!r}, {high!r} of {name!r} are not numbers") from None
        found[name] = Setting(name, vartype, unit, *bounds, tuple(enumvals.split(",")) if enumvals else (), context)
    return found


# How the catalog job frames what it prints (desired.catalog_job): anything outside the frame
# (a warning on stderr) is not part of it.
CATALOG_BEGIN = "pgtopo-catalog-begin"
CATALOG_END = "pgtopo-catalog-end major"


def parse_server_catalog(output: str) -> Catalog:
    """The catalog a server printed through the catalog job; raises ValueError when the output is
    not a whole one (the job stopped half-way, or printed something else)."""
    lines = output.splitlines()
    if CATALOG_BEGIN not in lines:
        raise ValueError(f"no {CATALOG_BEGIN!r} line")
    start = lines.index(CATALOG_BEGIN) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith(CATALOG_END + " ")), None)
    if end is None:
        raise ValueError(f"no {CATALOG_END!r} line after the settings")
    major = lines[end].removeprefix(CATALOG_END + " ").strip()
    if not major.isdigit():
        raise ValueError(f"the major {major!r} is not a number")
    settings = parse_catalog("\n".join(lines[start:end]))
    if not settings:
        raise ValueError("no settings")
    return Catalog(int(major), settings)


def major_of_image(image: str) -> int | None:
    """The PostgreSQL major an image reference names by its tag (`postgres:17`, `postgres:17.2-bookworm`,
    `registry:5000/pg/postgres:16`); None when the tag does not say (`latest`, a digest only)."""
    reference = image.split("@", 1)[0]
    name, _, tag = reference.rpartition(":")
    if not name or "/" in tag:
        return None  # no tag, only a registry port
    m = re.match(r"^(\d+)(?:\.\d+)*(?:[-_].*)?$", tag)
    return int(m.group(1)) if m and 9 < int(m.group(1)) < 100 else None


def problem(name: str, value: bool | int | float | str, major: int | None,
            known: Mapping[str, Setting] | None = None) -> str | None:
    """Why PostgreSQL `major` would not accept `name = value`; None when it would, or cannot be known.
    `known`: the settings to check against (a server's own, `Catalog.settings`); by default the
    catalog pgtopo ships for `major`."""
    if known is None and major is not None:
        known = catalog(major)
    if known is None or "." in name:  # no catalog; or an extension's custom setting (ext.name)
        return None
    setting = known.get(name)
    if setting is None:
        return _unknown(name, major, known)
    return _value_problem(setting, value)


def _unknown(name: str, major: int | None, known: Mapping[str, Setting]) -> str:
    text = f"parameter {name!r} is not a setting of PostgreSQL {major}"
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    if close:
        return f"{text}: did you mean {close[0]!r}?"
    return f"{text} (a custom setting needs a dot, ext.name)"


def _value_problem(s: Setting, value: bool | int | float | str) -> str | None:
    match s.vartype:
        case "bool":
            return None if _boolean(value) is not None else f"parameter {s.name!r} takes on or off, not {value!r}"
        case "enum":
            return _enum_problem(s, value)
        case "integer" | "real":
            return _number_problem(s, value)
        case _:
            return None


def _boolean(value: bool | int | float | str) -> bool | None:
    """The value as PostgreSQL's parse_bool reads it; None when it does not."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("on", "1"):
        return True
    if text in ("of", "off", "0"):
        return False
    if text and ("true".startswith(text) or "yes".startswith(text)):
        return True
    if text and ("false".startswith(text) or "no".startswith(text)):
        return False
    return None


def _enum_problem(s: Setting, value: bool | int | float | str) -> str | None:
    if isinstance(value, bool):
        text = "on" if value else "off"
    else:
        text = str(value).strip().lower()
    allowed = [v.lower() for v in (*s.enumvals, *_HIDDEN.get(s.name, ()))]
    if text in allowed or (text in _HIDDEN_BOOLEAN and "on" in allowed):
        return None
    return f"parameter {s.name!r} takes one of {', '.join(s.enumvals)}, not {value!r}"


def _number_problem(s: Setting, value: bool | int | float | str) -> str | None:
    if isinstance(value, bool):
        return f"parameter {s.name!r} takes a number, not {value!r}"
    amount = _in_base_unit(s, value)
    if isinstance(amount, str):
        return amount
    if s.vartype == "integer":
        amount = round(amount)
    if (s.min is not None and amount < s.min) or (s.max is not None and amount > s.max):
        return f"parameter {s.name!r} = {value!r} is out of range: {_bounds(s)}"
    return None


def _in_base_unit(s: Setting, value: int | float | str) -> float | str:
    """`value` in the setting's base unit, or why it cannot be read as one."""
    if isinstance(value, (int, float)):
        return float(value)
    m = _QUANTITY.match(value)
    if m is None:
        return f"parameter {s.name!r} takes a number{_unit_hint(s)}, not {value!r}"
    number, unit = float(m.group(1)), m.group(2)
    if not unit:
        return number
    base, table = _base(s.unit)
    if table is None or unit not in table:
        return f"parameter {s.name!r}: invalid unit {unit!r} in {value!r}{_unit_hint(s)}"
    return number * table[unit] / base


def _base(unit: str) -> tuple[float, dict[str, int] | None]:
    """The size of one base unit ("8kB": 8192 bytes) and the table its units come from."""
    m = re.match(r"^(\d*)(\D+)$", unit)
    if m is None:
        return 1.0, None
    factor, name = int(m.group(1) or 1), m.group(2)
    for table in (_MEMORY, _TIME):
        if name in table:
            return float(factor * table[name]), table
    return 1.0, None


def _unit_hint(s: Setting) -> str:
    _, table = _base(s.unit)
    return f" with a unit of {', '.join(table)}" if table else ""


def _bounds(s: Setting) -> str:
    unit = f" (in units of {s.unit})" if s.unit else ""
    low = "" if s.min is None else _number(s.min)
    high = "" if s.max is None else _number(s.max)
    return f"{low} to {high}{unit}"


def _number(x: float) -> str:
    return str(int(x)) if x.is_integer() else f"{x:g}"
