#!/usr/bin/env node
// WebSocket echo peer for tether's tests (Node `ws`).
//
// Run with Debian's node-ws: NODE_PATH=/usr/share/nodejs node test/peers/echo_server.js [options]
// Same contract as echo_server.py (see README.md in this directory):
//
//   --port N              listen port (default 0 = pick a free one)
//   --host H              listen address (default 127.0.0.1)
//   --subprotocols a,b    select the first client-offered protocol in this list
//   --tls CERT KEY        serve wss:// with this certificate chain and key
//   --max-size N          max incoming message size in bytes (default 256 MiB)
//   --deflate SPEC        accept permessage-deflate: "on", "no-context-takeover"
//                         (both directions) or "window=N" (both max_window_bits N)
//
// stdout: "listening PORT" once listening; "closed CODE REASON" per ended
// connection (the close code/reason received from the client, 1006 if none).
// Echoes text as text and binary as binary, in order; compression is off
// unless --deflate (then every message is compressed: threshold 0).
// Text messages starting with "!" are commands:
//   !close CODE REASON   start a close handshake with CODE (default 1000), REASON
//   !ping PAYLOAD        send a ping; on the matching pong send "pong PAYLOAD"
//   !drop                abort the TCP connection without a close frame
//   !subprotocol         reply "subprotocol NAME" (NAME empty if none)
//   !headers             reply with the request headers as JSON (lowercase names)
// Other "!..." messages are echoed. A failing command replies "error MESSAGE".
// Exits 0 on SIGTERM/SIGINT or when stdin reaches EOF (no orphans).
'use strict';
const fs = require('fs');
const http = require('http');
const https = require('https');
const { WebSocketServer } = require('ws');

const opts = { port: 0, host: '127.0.0.1', subprotocols: [], tls: null, maxSize: 256 * 1024 * 1024 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--port') opts.port = Number(argv[++i]);
  else if (a === '--host') opts.host = argv[++i];
  else if (a === '--subprotocols') opts.subprotocols = argv[++i].split(',').filter(Boolean);
  else if (a === '--tls') opts.tls = { cert: fs.readFileSync(argv[++i]), key: fs.readFileSync(argv[++i]) };
  else if (a === '--max-size') opts.maxSize = Number(argv[++i]);
  else if (a === '--deflate') opts.deflate = argv[++i];
  else { process.stderr.write(`echo_server.js: unknown argument ${a}\n`); process.exit(2); }
}

const out = (line) => process.stdout.write(line + '\n');
const quit = () => process.stdout.write('', () => process.exit(0));
process.on('SIGTERM', quit);
process.on('SIGINT', quit);
process.stdin.on('end', quit);
process.stdin.on('error', quit);
process.stdin.resume();

const server = opts.tls ? https.createServer(opts.tls) : http.createServer();
const wss = new WebSocketServer({
  server,
  perMessageDeflate: !opts.deflate ? false : {
    threshold: 0,
    serverNoContextTakeover: opts.deflate === 'no-context-takeover',
    clientNoContextTakeover: opts.deflate === 'no-context-takeover',
    ...(opts.deflate.startsWith('window=') ? {
      serverMaxWindowBits: Number(opts.deflate.split('=')[1]),
      clientMaxWindowBits: Number(opts.deflate.split('=')[1]),
    } : {}),
  },
  maxPayload: opts.maxSize,
  handleProtocols: (offered) => [...offered].find((p) => opts.subprotocols.includes(p)) || false,
});

function command(ws, req, text, pendingPings) {
  const [name, ...rest] = text.split(' ');
  const arg = rest.join(' ');
  if (name === '!close') {
    const code = rest[0] ? Number(rest[0]) : 1000;
    const reason = rest.slice(1).join(' ');
    // Validate first: ws.close() marks the socket CLOSING before it throws.
    const valid = (code >= 1000 && code <= 1014 && ![1004, 1005, 1006].includes(code)) ||
      (code >= 3000 && code <= 4999);
    if (!Number.isInteger(code) || !valid) throw new Error(`invalid close code ${rest[0]}`);
    if (Buffer.byteLength(reason) > 123) throw new Error('close reason too long');
    ws.close(code, reason);
  } else if (name === '!ping') {
    ws.ping(Buffer.from(arg));  // throws if > 125 bytes
    pendingPings.push(arg);
  } else if (name === '!drop') {
    ws.terminate();
  } else if (name === '!subprotocol') {
    ws.send('subprotocol ' + ws.protocol);
  } else if (name === '!headers') {
    ws.send(JSON.stringify(req.headers));
  } else {
    ws.send(text);
  }
}

wss.on('connection', (ws, req) => {
  const pendingPings = [];
  ws.on('message', (data, isBinary) => {
    const text = isBinary ? null : data.toString();
    if (text === null || !text.startsWith('!')) return ws.send(data, { binary: isBinary });
    try {
      command(ws, req, text, pendingPings);
    } catch (e) {
      ws.send('error ' + e.message);
    }
  });
  ws.on('pong', (data) => {
    const i = pendingPings.indexOf(data.toString());
    if (i >= 0) ws.send('pong ' + pendingPings.splice(i, 1)[0]);
  });
  ws.on('error', () => {});  // e.g. message too big; 'close' follows
  ws.on('close', (code, reason) => out(`closed ${code} ${reason.toString()}`));
});

server.listen(opts.port, opts.host, () => out(`listening ${server.address().port}`));
