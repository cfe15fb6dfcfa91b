// SPDX-License-Identifier: Apache-2.0
// What a Node.js service runs besides plain loops, for the V8 walker's tests:
// an async function awaiting promises (the synchronous part of its stack is
// what a CPU profile shows), a crypto call (JavaScript -> C++ -> OpenSSL) and a
// worker thread with its own isolate. Each has a function of its own to find.
//
//   node mixed.js SECONDS
'use strict';
const crypto = require('crypto');
const { Worker, isMainThread, workerData } = require('worker_threads');

function spin(n) {
  let s = 0;
  for (let i = 0; i < n; i++)
    s = (s + Math.imul(i, 2654435761)) | 0;
  return s;
}

function workerHot(end) {
  let s = 0;
  while (Date.now() < end)
    s ^= spin(20000);
  return s;
}

function hashWork(buf) {
  return crypto.createHash('sha256').update(buf).digest()[0];
}

async function asyncStep(i) {
  await Promise.resolve(i);
  return spin(20000);
}

async function asyncLoop(end) {
  const buf = Buffer.alloc(1 << 16, 7);
  let s = 0;
  while (Date.now() < end) {
    s ^= await asyncStep(s);
    s ^= hashWork(buf);
  }
  return s;
}

if (isMainThread) {
  const seconds = Number(process.argv[2] || 5);
  const end = Date.now() + seconds * 1000;
  const w = new Worker(__filename, { workerData: end });
  w.on('error', (e) => { console.error(e); process.exit(1); });
  asyncLoop(end).then((s) => console.log(s));
} else {
  workerHot(workerData);
}
