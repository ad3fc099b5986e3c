#!/usr/bin/env node
// Compare two data files with DuckDB: row count and an order-independent
// checksum over every column of every row.
//
//   node compare.mjs [--format csv|parquet|json|auto] MOUNTED ORIGINAL
//
// Prints one JSON object per file and a verdict line; exits 0 when both
// files give the same results, 1 when they differ, 2 on a usage or query
// error. The format defaults to the extension of the first path.
import { statSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';

function usage(msg) {
  if (msg) console.error(`compare.mjs: ${msg}`);
  console.error('usage: node compare.mjs [--format csv|parquet|json|auto] PATH_A PATH_B');
  process.exit(2);
}

const args = process.argv.slice(2);
let format = 'auto';
const paths = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--format') {
    format = args[++i];
    if (!format) usage('--format needs a value');
  } else if (args[i].startsWith('--format=')) {
    format = args[i].slice('--format='.length);
  } else {
    paths.push(args[i]);
  }
}
if (paths.length !== 2) usage('need exactly two paths');

function readerFor(fmt, path) {
  if (fmt === 'auto') {
    const m = /\.([A-Za-z0-9]+)$/.exec(path.replace(/\/+$/, ''));
    fmt = m ? m[1].toLowerCase() : '';
  }
  const quoted = `'${path.replace(/'/g, "''")}'`;
  switch (fmt) {
    case 'csv':
    case 'tsv':
      return `read_csv_auto(${quoted})`;
    case 'parquet':
      return `read_parquet(${quoted})`;
    case 'json':
    case 'jsonl':
    case 'ndjson':
      return `read_json_auto(${quoted})`;
    default:
      usage(`cannot tell the format of ${path}; pass --format`);
  }
  return '';
}

async function summarise(conn, path) {
  // A directory of parquet parts is read as one dataset.
  let target = path;
  let fmt = format;
  if (statSync(path).isDirectory()) {
    target = `${path.replace(/\/+$/, '')}/*`;
    if (fmt === 'auto') fmt = 'parquet';
  }
  const from = readerFor(fmt, target);
  const sql = `SELECT count(*)::VARCHAR AS n, coalesce(sum(hash(t)), 0)::VARCHAR AS checksum FROM ${from} t`;
  const reader = await conn.runAndReadAll(sql);
  const [row] = reader.getRowObjectsJS();
  const cols = await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${from}`);
  return {
    path,
    rows: String(row.n),
    checksum: String(row.checksum),
    columns: cols.getRowObjectsJS().map((c) => `${c.column_name}:${c.column_type}`),
  };
}

let code = 0;
try {
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  const a = await summarise(conn, paths[0]);
  const b = await summarise(conn, paths[1]);
  console.log(JSON.stringify(a));
  console.log(JSON.stringify(b));
  const same =
    a.rows === b.rows &&
    a.checksum === b.checksum &&
    JSON.stringify(a.columns) === JSON.stringify(b.columns);
  console.log(same ? `EQUAL rows=${a.rows} checksum=${a.checksum}` : 'DIFFERENT');
  code = same ? 0 : 1;
  conn.closeSync?.();
} catch (err) {
  console.error(`compare.mjs: ${err && err.message ? err.message : err}`);
  code = 2;
}
process.exit(code);
