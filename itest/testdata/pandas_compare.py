"""Read a mounted file and its original with pandas and compare them.

usage: /usr/bin/python3 pandas_compare.py csv|json MOUNTED ORIGINAL

Prints one JSON object: both shapes, the column names, and whether
DataFrame.equals() holds. Exit status 0 whenever both files could be read.
"""
import json
import sys

import pandas as pd


def main():
    kind, mounted, original = sys.argv[1:4]
    read = {"csv": pd.read_csv, "json": pd.read_json}[kind]
    df1 = read(mounted)
    df2 = read(original)
    print(json.dumps({
        "mounted_shape": list(df1.shape),
        "original_shape": list(df2.shape),
        "mounted_columns": [str(c) for c in df1.columns],
        "original_columns": [str(c) for c in df2.columns],
        "equal": bool(df1.equals(df2)),
    }))


if __name__ == "__main__":
    main()
