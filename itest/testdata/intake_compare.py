"""Compare a source's mounted describe.yaml with the original catalog, in Intake.

usage: /usr/bin/python3 intake_compare.py CATALOG ENTRY PARAMS_JSON DESCRIBE_YAML [METADATA_JSON]

CATALOG is the original root catalog file; ENTRY the source's path in it
("stocks", "flights/flights"); PARAMS_JSON the user parameters chosen
("{}" or '{"size": "5k"}'); DESCRIBE_YAML the mounted describe.yaml for
that source and those parameters; METADATA_JSON the mounted metadata.json.

Prints one JSON object {"checks": [...], "failures": [...]}; each check has
a name, ok, and the mounted and original values. Exit status 0 when the
script ran (whatever the checks say), 2 when Intake itself failed.
"""
import json
import sys
import traceback

import intake
from intake.source.base import DataSource, Schema

# Drivers the demo catalog names but Debian's Intake lacks (intake-parquet).
# A stand-in lets Intake still render the arguments, which is what we compare.
MISSING_DRIVERS = ["parquet"]


def placeholder(driver_name):
    class Placeholder(DataSource):
        name = driver_name
        version = "0.0.0"
        container = "dataframe"
        partition_access = False

        def __init__(self, *args, metadata=None, **kwargs):
            super().__init__(metadata=metadata)

        def _get_schema(self):
            return Schema(datashape=None, dtype=None, shape=None, npartitions=0, extra_metadata={})

    Placeholder.__name__ = "Placeholder_" + driver_name
    return Placeholder


for _name in MISSING_DRIVERS:
    if _name not in intake.registry:
        intake.register_driver(_name, placeholder(_name), clobber=True)


def rendered(source):
    kw = dict(source._captured_init_kwargs)
    md = kw.pop("metadata", None) or {}
    return kw, md


def without_catalog_dir(md):
    return {k: v for k, v in md.items() if k != "catalog_dir"}


def plain(x):
    """JSON-compatible copy, so values compare the same way they print."""
    return json.loads(json.dumps(x, default=str, sort_keys=True))


def row_count(source):
    container = source.container
    driver = getattr(type(source), "name", "")
    if container == "dataframe" and driver == "csv":
        df = source.read()
        return {"shape": list(df.shape), "columns": [str(c) for c in df.columns]}
    if container == "python" and driver in ("json", "jsonl"):
        return {"rows": len(source.read())}
    return None


def main():
    catalog, entry_path, params_json, describe_yaml = sys.argv[1:5]
    metadata_json = sys.argv[5] if len(sys.argv) > 5 else None
    params = json.loads(params_json)

    cat = intake.open_catalog(catalog)
    parts = entry_path.split("/")
    for p in parts[:-1]:
        cat = cat[p]
    name = parts[-1]
    orig_entry = cat._entries[name]
    # The parameters the source declares itself (before Intake attaches
    # the catalog-level ones to it).
    own_params = sorted(
        (p["name"] if isinstance(p, dict) else p.name) for p in (orig_entry._user_parameters or [])
    )
    orig = cat[name]
    if params:
        orig = orig(**params)
    okw, omd = rendered(orig)
    odesc = orig_entry.describe()

    mcat = intake.open_catalog(describe_yaml)
    names = list(mcat)
    checks = []

    def check(what, ok, mounted, original):
        checks.append({"name": what, "ok": bool(ok), "mounted": plain(mounted), "original": plain(original)})

    check("one entry", len(names) == 1, names, [name])
    if len(names) != 1:
        return report(checks)
    mname = names[0]
    mentry = mcat._entries[mname]
    mdesc = mentry.describe()
    msrc = mcat[mname]
    mkw, mmd = rendered(msrc)

    check("entry name", mname == name, mname, name)
    check("driver", mdesc["driver"] == odesc["driver"], mdesc["driver"], odesc["driver"])
    check("description", (mdesc["description"] or "") == (odesc["description"] or ""),
          mdesc["description"], odesc["description"])
    # describe.yaml's args are already rendered: they must be what Intake
    # renders from the original entry with the same parameter values.
    check("describe args == rendered original args", plain(mdesc["args"]) == plain(okw), mdesc["args"], okw)
    check("rendered args", plain(mkw) == plain(okw), mkw, okw)
    check("rendered urlpath", mkw.get("urlpath", mkw.get("path")) == okw.get("urlpath", okw.get("path")),
          mkw.get("urlpath", mkw.get("path")), okw.get("urlpath", okw.get("path")))
    check("rendered metadata (less catalog_dir)",
          plain(without_catalog_dir(mmd)) == plain(without_catalog_dir(omd)),
          without_catalog_dir(mmd), without_catalog_dir(omd))
    mparams = sorted(p["name"] for p in mdesc["user_parameters"])
    check("declared parameters listed", set(own_params) <= set(mparams), mparams, own_params)

    if metadata_json:
        with open(metadata_json) as f:
            mdjson = json.load(f)
        check("metadata.json == source.metadata", plain(mdjson) == plain(orig.metadata), mdjson, orig.metadata)

    ocount = row_count(orig)
    if ocount is not None:
        mcount = row_count(msrc)
        check("read() through describe.yaml", mcount == ocount, mcount, ocount)
    return report(checks)


def report(checks):
    print(json.dumps({"checks": checks, "failures": [c["name"] for c in checks if not c["ok"]]}))


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(2)
