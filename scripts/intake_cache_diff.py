#!/usr/bin/python3
"""Run the `cache:` blocks of a catalog's sources through Intake itself.

    /usr/bin/python3 scripts/intake_cache_diff.py --cache-dir DIR [--shared] CATALOG.yaml [SOURCE ...]

For each source (all of the catalog's, in sorted order, when none is named)
the source is opened with Intake (0.6.6, Debian's python3-intake) and its
driver is asked for its data as a user's ``discover()``/``read()`` would:
the driver calls ``_get_cache(<its own data argument>)``, which builds every
cache block (``intake.source.cache.make_caches``) and runs each block's
``load``. The list the driver then uses (element [0], the first block's)
is recorded and the driver is stopped there: nothing else of the data is
read.

Each source gets a cache of its own, DIR/<n>/ (n: its place in the order),
with its own cache metadata (Intake keeps it in ``config.confdir``), so that
one source cannot see another's cached files. With ``--shared`` the sources
run in the order given against one cache, DIR/shared/, and one metadata
file, as in one Python session; that shows Intake's cache keyed by urlpath
alone.

Output: one JSON document on stdout:

    {"intake": "0.6.6", "sources": {NAME: RESULT, ...}}

RESULT is {"files": [FILE, ...]} for what the cache yields, in Intake's
order, or {"error": {"type": ..., "msg": ...}} when Intake fails (the
exception's type and message; the catalog's directory is written {DIR}).
FILE is {"path": ..., "member": ..., "file": ..., "sha256": ..., "size": N}
for a regular file, with "dir": true and no digest for a directory that
the cache lists as one of its files:

- path: the file's path relative to the source's cache entry (its hash
  directory under the cache dir), with the catalog's directory written
  {DIR};
- member: the file's name below what was cached: for type ``compressed``
  the path inside its extraction directory (an archive member's name), for
  type ``dir`` the path inside the cached directory, for type ``file`` the
  base name;
- file: its absolute local path (the test reads the bytes from there);
- sha256, size: of its bytes.

A cache of type ``dir`` yields one directory; its regular files are listed,
in sorted order. A source without a cache block yields its urlpath as it
is: listed as a file when it is one.
"""

import argparse
import contextlib
import hashlib
import io
import json
import logging
import os
import sys
import warnings


class _Stop(Exception):
    """Raised from the patched _get_cache: the driver got its files."""

    def __init__(self, paths):
        super().__init__("stopped")
        self.paths = paths


class NoCachedFiles(Exception):
    """The cache logged no file for the urlpath: load returns None."""


def digest(p):
    h = hashlib.sha256()
    n = 0
    with open(p, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
            n += len(b)
    return h.hexdigest(), n


def cache_paths(src, urlpath_hook):
    """The local paths the driver gets from its cache (the first block's)."""
    orig = src._get_cache

    def hooked(urlpath):
        urlpath_hook.append(urlpath)
        out = orig(urlpath)
        raise _Stop(out[0])

    src._get_cache = hooked
    for step in ("discover", "read"):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                getattr(src, step)()
        except _Stop as s:
            return s.paths
    raise RuntimeError("the driver %s never asked its cache for files" % type(src).__name__)


def describe(src, paths, urlpath, cache_root, catdir):
    from intake.source.cache import DirCache, CompressedCache

    def rel(p):
        r = os.path.relpath(p, cache_root)
        # drop the hash directory: the entry
        r = r.split(os.sep, 1)[1] if os.sep in r else r
        return r.replace(catdir.lstrip("/"), "{DIR}")

    caches = src.cache
    first = caches[0] if caches else None
    if paths is None:
        # the driver gets None (no file was cached) and fails on it
        raise NoCachedFiles("Intake's cache yields None for %r" % (urlpath,))
    if isinstance(paths, str):
        paths = [paths]
    files = []

    def add(p, member):
        if os.path.isdir(p):
            files.append({"path": rel(p), "member": member, "file": p, "dir": True})
            return
        sha, n = digest(p)
        files.append({"path": rel(p), "member": member, "file": p, "sha256": sha, "size": n})

    for p in paths:
        if isinstance(first, DirCache):
            for root, dirs, names in os.walk(p):
                dirs.sort()
                for n in sorted(names):
                    full = os.path.join(root, n)
                    add(full, os.path.relpath(full, p))
            continue
        if isinstance(first, CompressedCache):
            base = first._path(urlpath)
            add(p, os.path.relpath(p, base))
            continue
        add(p, os.path.basename(p))
    return files


def error_result(e, catdir):
    msg = str(e)
    if isinstance(e, KeyError) and len(e.args) == 1:
        msg = str(e.args[0])
    return {"error": {"type": type(e).__name__, "msg": msg.replace(catdir, "{DIR}")}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache-dir", required=True, help="where Intake's caches are made")
    ap.add_argument("--shared", action="store_true", help="one cache and one metadata for all the sources, in the order given")
    ap.add_argument("catalog")
    ap.add_argument("sources", nargs="*")
    a = ap.parse_args()
    cache_dir = os.path.abspath(a.cache_dir)
    catalog = os.path.abspath(a.catalog)
    catdir = os.path.dirname(catalog)
    os.makedirs(cache_dir, exist_ok=True)
    # before intake is imported: its config reads these
    os.environ["INTAKE_CONF_DIR"] = os.path.join(cache_dir, ".conf")
    os.environ.pop("INTAKE_CACHE_DIR", None)
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")

    import tempfile

    # the compressed cache downloads into a temporary directory it leaves
    tempfile.tempdir = os.path.join(cache_dir, ".tmp")
    os.makedirs(tempfile.tempdir, exist_ok=True)

    import intake
    import intake.config

    intake.config.conf["cache_download_progress"] = False
    intake.config.conf["cache_disabled"] = False
    out = {"intake": intake.__version__, "sources": {}}
    try:
        names = a.sources or sorted(intake.open_catalog(catalog))
    except Exception as e:  # noqa: BLE001 - a failure is a result
        out["error"] = error_result(e, catdir)["error"]
        names = []
    for i, name in enumerate(names):
        root = os.path.join(cache_dir, "shared" if a.shared else str(i))
        conf = os.path.join(root, ".conf") if not a.shared else os.path.join(cache_dir, "shared.conf")
        os.makedirs(conf, exist_ok=True)
        intake.config.confdir = conf  # CacheMetadata reads it when made
        intake.config.conf["cache_dir"] = root
        hook = []
        try:
            cat = intake.open_catalog(catalog)
            src = cat[name]
            paths = cache_paths(src, hook)
            res = {"files": describe(src, paths, hook[0] if hook else None, root, catdir)}
        except Exception as e:  # noqa: BLE001 - every failure is a result
            res = error_result(e, catdir)
        out["sources"][name] = res
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
