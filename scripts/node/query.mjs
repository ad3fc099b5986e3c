#!/usr/bin/env node
// Run one SQL statement with DuckDB (in memory) and print the result as a
// small table. Used by scripts/demo.sh to query files in a mounted catalog.
//
//   node query.mjs "SELECT ... FROM read_csv_auto('/mnt/x.csv') ..."
import { DuckDBInstance } from '@duckdb/node-api';

const sql = process.argv.slice(2).join(' ');
if (!sql.trim()) {
  console.error('usage: node query.mjs SQL');
  process.exit(2);
}

try {
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  const reader = await conn.runAndReadAll(sql);
  const names = reader.columnNames();
  const rows = reader.getRowsJS().map((r) => r.map((v) => (v === null ? 'NULL' : String(v))));
  const widths = names.map((n, i) => Math.max(n.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  console.log(line(names));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(r));
  console.log(`(${rows.length} row${rows.length === 1 ? '' : 's'})`);
} catch (err) {
  console.error(`query.mjs: ${err && err.message ? err.message : err}`);
  process.exit(1);
}
