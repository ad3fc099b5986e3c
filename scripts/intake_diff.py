#!/usr/bin/python3
"""Run intakefs's differential-test cases through Intake itself.

    /usr/bin/python3 scripts/intake_diff.py [--workdir DIR] [--mode 0.7|0.6.6|both] CASE.yaml|CASEDIR ...

Each case file (testdata/diff/*.yaml) holds a catalog and the files it needs
(``files:``, written under WORKDIR/<case name>/), environment variables
(``env:``) and queries. A query's ``path`` is written in intakefs's name
grammar, NAME(@KEY=VALUE)*, one segment per level: ``sub@bucket=prod/src@n=5``.
Each segment but the last is a catalog reached as Intake users reach it,
``cat[name](**kwargs)``; the last is a source (its rendered arguments and
metadata are printed) or a catalog (its listing and catalog-level parameters
are printed). Path values are passed to Intake as the strings they are,
unless the query gives ``py:`` (the keyword arguments a Python user would
pass for the last segment, e.g. ``{flag: false}`` for ``@flag=false``).

Every query runs in a fresh catalog (Intake caches default sources and
merges catalog parameters into entries in place, so an earlier query could
change a later one), in the case's directory, with the case's environment.

By default each query runs twice: with Intake 0.6.6's own coercion, and
with Intake 0.7's (``coerce`` as 0.7 has it: a string given for any type
but str and datetime is first read with ``ast.literal_eval``). intakefs
follows 0.7 (SPEC §3); the Go test compares against "0.7" and requires a
note in the case wherever the two differ.

Output: one JSON document on stdout:
    {"intake": "0.6.6", "cases": {NAME: [{"path": ..., "0.7": RESULT, "0.6.6": RESULT}, ...]}}
RESULT is {"listing": [[name, is_catalog], ...], "params": {...}} for a
catalog, {"args": {...}, "metadata": {...}} for a source, or
{"error": {"type": ..., "msg": ...}}. Values keep their Python type:
floats are {"$float": repr}, tuples {"$tuple": [...]}, timestamps
{"$datetime": str}, dates {"$date": str}, anything else {"$repr": repr};
the case directory is written {DIR} in strings.
"""

import argparse
import ast
import contextlib
import datetime
import io
import json
import logging
import os
import sys
import urllib.parse
import warnings

import yaml

import intake
import intake.catalog.local as intake_local
import intake.catalog.utils as intake_utils
from intake.catalog import Catalog

ORIGINAL_COERCE = intake_utils.coerce


def coerce_07(dtype, value):
    """Intake 0.7's utils.coerce: as 0.6.6's, except that a string value
    for a rule other than str and datetime is first parsed as a Python
    literal (failures of the parse are ignored, except SyntaxError, which
    0.7 lets through)."""
    rules = intake_utils.COERCION_RULES
    if "[" in dtype:
        dtype, inner = dtype.split("[")
        inner = inner.rstrip("]")
    else:
        inner = None
    if dtype is None:
        return value
    if type(value).__name__ == dtype:
        return value
    if dtype == "mlist":
        if isinstance(value, (tuple, set, dict)):
            return list(value)
        if isinstance(value, str):
            try:
                value = ast.literal_eval(value)
                return list(value)
            except ValueError as e:
                raise ValueError("Failed to coerce string to list") from e
        return value
    op = rules[dtype]

    def parsed(v):
        if isinstance(v, str) and op not in (str, intake_utils.coerce_datetime):
            try:
                v = ast.literal_eval(v)
            except (ValueError, TypeError, RuntimeError):
                pass
        return op(v)

    out = op() if value is None else parsed(value)
    if isinstance(out, dict) and inner is not None:
        out = {k: rules[inner](v) for k, v in out.items()}
    if isinstance(out, (tuple, list, set)) and inner is not None:
        out = op(rules[inner](v) for v in out)
    return out


def set_mode(mode):
    fn = coerce_07 if mode == "0.7" else ORIGINAL_COERCE
    # local.py imported the name; utils.merge_pars reaches it through
    # UserParameter.validate, which uses local's.
    intake_local.coerce = fn
    intake_utils.coerce = fn


def unescape(s):
    # intakefs's percent-decoding: %XX only
    return urllib.parse.unquote(s, errors="strict")


def parse_segment(seg):
    parts = seg.split("@")
    name = unescape(parts[0])
    kw = {}
    for kv in parts[1:]:
        k, _, v = kv.partition("=")
        kw[unescape(k)] = unescape(v)
    return name, kw


class Enc:
    def __init__(self, casedir):
        self.casedir = casedir.rstrip("/")

    def __call__(self, v):
        import pandas

        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, str):
            return v.replace(self.casedir, "{DIR}")
        if isinstance(v, int):
            return v
        if isinstance(v, float):
            return {"$float": repr(v)}
        if isinstance(v, tuple):
            return {"$tuple": [self(x) for x in v]}
        if isinstance(v, list):
            return [self(x) for x in v]
        if isinstance(v, dict):
            return {str(k): self(x) for k, x in v.items()}
        if isinstance(v, pandas.Timestamp):
            return {"$datetime": str(v)}
        if isinstance(v, datetime.datetime):
            return {"$datetime": str(pandas.Timestamp(v))}
        if isinstance(v, datetime.date):
            return {"$date": str(v)}
        return {"$repr": repr(v).replace(self.casedir, "{DIR}")}


def error_result(e, enc):
    msg = str(e)
    if isinstance(e, KeyError) and len(e.args) == 1:
        msg = str(e.args[0])
    return {"error": {"type": type(e).__name__, "msg": enc(msg)}}


def step(cat, name, kw):
    """cat[name](**kw), as a user writes it."""
    if not isinstance(cat, Catalog):
        raise KeyError(name)
    if name not in cat:
        raise KeyError(name)
    try:
        obj = cat[name]
    except Exception:
        # Intake makes the source with its defaults before it applies the
        # user's values; when the defaults fail, a user's values may still
        # be good. Catalog._get_entry has merged the catalog's parameters
        # into the entry by now: call it as Intake would have.
        if not kw:
            raise
        return cat._entries[name](**kw)
    if kw:
        obj = obj(**kw)
    return obj


def run_query(root, q, enc):
    cat = intake.open_catalog(root)
    if q.get("params"):
        cat = cat(**q["params"])
    segs = [s for s in q.get("path", "").split("/") if s]
    obj = cat
    for i, seg in enumerate(segs):
        if i == len(segs) - 1 and q.get("ext"):
            suffix = "." + q["ext"]
            if seg.endswith(suffix):
                seg = seg[: -len(suffix)]
        name, kw = parse_segment(seg)
        if i == len(segs) - 1 and "py" in q:
            kw = dict(q["py"] or {})
        obj = step(obj, name, kw)
    if isinstance(obj, Catalog):
        listing = []
        for n in sorted(obj):
            e = obj._entries[n]
            listing.append([enc(n), getattr(e, "_container", None) == "catalog"])
        params = {}
        for n, up in obj.user_parameters.items():
            params[n] = enc(up.default if not isinstance(up, dict) else up.get("default"))
        return {"listing": listing, "params": params}
    kwargs = dict(obj._captured_init_kwargs)
    kwargs.pop("metadata", None)
    return {"args": enc(kwargs), "metadata": enc(obj.metadata)}


@contextlib.contextmanager
def environment(cwd, env):
    old_env = dict(os.environ)
    old_cwd = os.getcwd()
    os.environ.update({k: str(v) for k, v in (env or {}).items()})
    for k, v in (env or {}).items():
        if v is None:
            os.environ.pop(k, None)
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        os.environ.clear()
        os.environ.update(old_env)


def materialise(case, casedir):
    os.makedirs(casedir, exist_ok=True)
    for rel, content in (case.get("files") or {}).items():
        p = os.path.join(casedir, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))


def case_files(paths):
    out = []
    for p in paths:
        if os.path.isdir(p):
            out += sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith(".yaml"))
        else:
            out.append(p)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", help="where the cases' files are written (default: a new temporary directory)")
    ap.add_argument("--mode", default="both", choices=["0.7", "0.6.6", "both"])
    ap.add_argument("cases", nargs="+")
    a = ap.parse_args()
    workdir = a.workdir
    if not workdir:
        import tempfile

        workdir = tempfile.mkdtemp(prefix="intake_diff.")
    workdir = os.path.abspath(workdir)
    modes = ["0.7", "0.6.6"] if a.mode == "both" else [a.mode]
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    out = {"intake": intake.__version__, "workdir": workdir, "cases": {}}
    for path in case_files(a.cases):
        name = os.path.splitext(os.path.basename(path))[0]
        with open(path) as f:
            case = yaml.safe_load(f)
        casedir = os.path.join(workdir, name)
        materialise(case, casedir)
        enc = Enc(casedir)
        root = os.path.join(casedir, case.get("root", "catalog.yaml"))
        results = []
        for q in case.get("queries") or []:
            r = {"path": q.get("path", "")}
            for mode in modes:
                set_mode(mode)
                env = dict(case.get("env") or {})
                env.update(q.get("env") or {})
                with environment(casedir, env):
                    try:
                        # Intake prints some errors (walk) to stdout
                        with contextlib.redirect_stdout(io.StringIO()):
                            r[mode] = run_query(root, q, enc)
                    except Exception as e:  # noqa: BLE001 - every failure is a result
                        r[mode] = error_result(e, enc)
            results.append(r)
        out["cases"][name] = results
    set_mode("0.6.6")
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
