#!/usr/bin/env node
// DuckDB helpers for scripts/bench_issue5.sh (the Parquet part of the
// benchmark). Uses the DuckDB of scripts/node (run scripts/setup.sh first).
//
//   node parquet.mjs make SRC OUT MIN_BYTES ROW_GROUP_ROWS
//       write OUT from SRC (vega-datasets flights-3m.parquet): SRC's rows
//       repeated as often as it takes for OUT to hold at least MIN_BYTES,
//       each copy with its dates moved on by one year and its delays
//       changed a little (so the copies are not byte-identical runs), in
//       row groups of ROW_GROUP_ROWS rows; prints a JSON summary.
//   node parquet.mjs colbytes FILE COL [BLOCK]
//       the bytes a reader of column COL needs: the column's chunks
//       (sum of total_compressed_size over the row groups) and the footer
//       (the footer length in the last 8 bytes, plus those 8); and, as
//       block_bytes, those ranges rounded out to whole BLOCK-byte blocks
//       (default 1 MiB), counting each block once: the least a cache of
//       such blocks can fetch for them; JSON.
//   node parquet.mjs time FILE COL RUNS [WARMUP]
//       run SELECT avg(COL) FROM read_parquet(FILE) WARMUP (default 1)
//       times unrecorded, then RUNS times, each in a fresh in-memory DuckDB
//       (so DuckDB keeps nothing between runs); prints JSON with the time
//       of each recorded run (ms, the query alone, not DuckDB start-up),
//       their median and the result.
import { createRequire } from 'node:module';
import { openSync, readSync, fstatSync, closeSync, statSync } from 'node:fs';

const require = createRequire(new URL('../node/package.json', import.meta.url));
const { DuckDBInstance } = require('@duckdb/node-api');

const q = (s) => `'${String(s).replace(/'/g, "''")}'`;
const ident = (s) => `"${String(s).replace(/"/g, '""')}"`;

async function connect() {
  const inst = await DuckDBInstance.create(':memory:');
  return inst.connect();
}

async function one(conn, sql) {
  const r = await conn.runAndReadAll(sql);
  return r.getRowObjectsJS()[0];
}

function footerBytes(path) {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const b = Buffer.alloc(8);
    readSync(fd, b, 0, 8, size - 8);
    if (b.toString('latin1', 4, 8) !== 'PAR1') throw new Error(`${path}: not a Parquet file`);
    return { size, footer: b.readUInt32LE(0) + 8 };
  } finally {
    closeSync(fd);
  }
}

async function make(src, out, minBytes, rgRows) {
  const conn = await connect();
  const srcBytes = statSync(src).size;
  let copies = Math.max(1, Math.ceil(minBytes / srcBytes));
  for (;;) {
    const parts = [];
    for (let i = 0; i < copies; i++) {
      parts.push(
        `SELECT date + INTERVAL ${i} YEAR AS date, delay + ${i % 7} - 3 AS delay, distance, origin, destination FROM read_parquet(${q(src)})`,
      );
    }
    await conn.run('SET preserve_insertion_order = true');
    await conn.run(
      `COPY (${parts.join(' UNION ALL ')}) TO ${q(out)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE ${rgRows})`,
    );
    const size = statSync(out).size;
    if (size >= minBytes) break;
    copies = Math.ceil(copies * (minBytes / size) * 1.02) + 1;
  }
  const m = await one(
    conn,
    `SELECT count(DISTINCT row_group_id)::INTEGER AS row_groups, max(row_group_num_rows)::BIGINT AS rows_per_group FROM parquet_metadata(${q(out)})`,
  );
  const n = await one(conn, `SELECT count(*)::BIGINT AS n FROM read_parquet(${q(out)})`);
  console.log(JSON.stringify({ path: out, bytes: statSync(out).size, copies, rows: Number(n.n), row_groups: m.row_groups, rows_per_group: Number(m.rows_per_group) }));
}

async function colbytes(file, col, block) {
  const conn = await connect();
  const r = await one(
    conn,
    `SELECT coalesce(sum(total_compressed_size), 0)::BIGINT AS chunks, count(*)::INTEGER AS n_chunks,
            count(DISTINCT row_group_id)::INTEGER AS row_groups
       FROM parquet_metadata(${q(file)}) WHERE path_in_schema = ${q(col)}`,
  );
  if (!r.n_chunks) throw new Error(`${file}: no column ${col}`);
  const f = footerBytes(file);
  // Chunk ranges: from the dictionary page when there is one, else the
  // first data page, for total_compressed_size bytes.
  const ranges = (
    await conn.runAndReadAll(
      `SELECT CASE WHEN dictionary_page_offset > 0 AND dictionary_page_offset < data_page_offset
                   THEN dictionary_page_offset ELSE data_page_offset END::BIGINT AS start,
              total_compressed_size::BIGINT AS n
         FROM parquet_metadata(${q(file)}) WHERE path_in_schema = ${q(col)}`,
    )
  ).getRowObjectsJS().map((x) => [Number(x.start), Number(x.start) + Number(x.n)]);
  ranges.push([f.size - f.footer, f.size]);
  const blocks = new Set();
  for (const [a, b] of ranges) for (let i = Math.floor(a / block); i * block < b; i++) blocks.add(i);
  let blockBytes = 0;
  for (const i of blocks) blockBytes += Math.min(block, f.size - i * block);
  const total = await one(conn, `SELECT count(*)::INTEGER AS n FROM parquet_metadata(${q(file)})`);
  console.log(
    JSON.stringify({
      file, column: col, file_bytes: f.size, chunk_bytes: Number(r.chunks), footer_bytes: f.footer,
      needed_bytes: Number(r.chunks) + f.footer, block, block_bytes: blockBytes, row_groups: r.row_groups, chunks_in_file: total.n,
    }),
  );
}

async function time(file, col, runs, warmup) {
  const sql = `SELECT avg(${ident(col)})::DOUBLE AS v FROM read_parquet(${q(file)})`;
  const ms = [];
  let value;
  for (let i = 0; i < warmup + runs; i++) {
    const conn = await connect();
    const t0 = process.hrtime.bigint();
    const r = await one(conn, sql);
    const t1 = process.hrtime.bigint();
    value = r.v;
    if (i >= warmup) ms.push(Number(t1 - t0) / 1e6);
    conn.closeSync?.();
  }
  const s = [...ms].sort((a, b) => a - b);
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  console.log(JSON.stringify({ file, column: col, sql, runs_ms: ms.map((x) => +x.toFixed(2)), median_ms: +median.toFixed(2), value }));
}

const [cmd, ...a] = process.argv.slice(2);
try {
  if (cmd === 'make' && a.length === 4) await make(a[0], a[1], Number(a[2]), Number(a[3]));
  else if (cmd === 'colbytes' && (a.length === 2 || a.length === 3)) await colbytes(a[0], a[1], Number(a[2] || 1048576));
  else if (cmd === 'time' && (a.length === 3 || a.length === 4)) await time(a[0], a[1], Number(a[2]), a.length === 4 ? Number(a[3]) : 1);
  else {
    console.error('usage: parquet.mjs make SRC OUT MIN_BYTES ROW_GROUP_ROWS | colbytes FILE COL [BLOCK] | time FILE COL RUNS [WARMUP]');
    process.exit(2);
  }
} catch (err) {
  console.error(`parquet.mjs: ${err && err.message ? err.message : err}`);
  process.exit(1);
}
