#!/usr/bin/env node
// A TCP proxy on loopback that counts the bytes it carries, for
// scripts/bench_issue5.sh: put it between a client and an S3 server to see
// how many bytes the server sent (response headers included).
//
//   node countproxy.mjs LISTEN_PORT TARGET_PORT COUNT_FILE
//
// Listens on 127.0.0.1:LISTEN_PORT and forwards every connection to
// 127.0.0.1:TARGET_PORT. Keeps COUNT_FILE up to date (rewritten within
// 100 ms of a change, atomically) with
//   {"down": bytes server->client, "up": bytes client->server, "conns": N}
// Prints "listening" on standard output once it accepts connections.
// Exits on SIGTERM or SIGINT.
import net from 'node:net';
import { writeFileSync, renameSync } from 'node:fs';

const [listenPort, targetPort, countFile] = process.argv.slice(2);
if (!countFile) {
  console.error('usage: countproxy.mjs LISTEN_PORT TARGET_PORT COUNT_FILE');
  process.exit(2);
}

let down = 0;
let up = 0;
let conns = 0;
let dirty = true;

function flush() {
  if (!dirty) return;
  dirty = false;
  writeFileSync(`${countFile}.tmp`, JSON.stringify({ down, up, conns }) + '\n');
  renameSync(`${countFile}.tmp`, countFile);
}
setInterval(flush, 100);

const server = net.createServer((client) => {
  conns++;
  dirty = true;
  const upstream = net.connect(Number(targetPort), '127.0.0.1');
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.on('data', (b) => { up += b.length; dirty = true; });
  upstream.on('data', (b) => { down += b.length; dirty = true; });
  client.pipe(upstream);
  upstream.pipe(client);
  const end = () => { client.destroy(); upstream.destroy(); };
  client.on('error', end);
  upstream.on('error', end);
  client.on('close', end);
  upstream.on('close', end);
});
server.listen(Number(listenPort), '127.0.0.1', () => {
  flush();
  console.log('listening');
});
const stop = () => { flush(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
