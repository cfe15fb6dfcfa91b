// SPDX-License-Identifier: Apache-2.0
// A known call chain for the Node.js tests and bench: main -> run -> pick ->
// hotThree or coldOne, three calls to hotThree for each call to coldOne. The
// two leaves are the same work and larger than TurboFan inlines (460 bytes of
// bytecode), so each stays a function of its own and a sampler can tell them
// apart.
//
//   node ratio.js SECONDS
'use strict';
let sink = 0;

function hotThree(x) {
  let s = x | 0;
  for (let i = 0; i < 40; i++) {
    s = (s + Math.imul(x ^ i, 31)) | 0; s ^= s >>> 7; s = (s + Math.imul(x | i, 29)) | 0; s ^= s << 3;
    s = (s + Math.imul(x & i, 23)) | 0; s ^= s >>> 11; s = (s + Math.imul(x ^ i, 19)) | 0; s ^= s << 5;
    s = (s + Math.imul(x | i, 17)) | 0; s ^= s >>> 13; s = (s + Math.imul(x & i, 13)) | 0; s ^= s << 7;
    s = (s + Math.imul(x ^ i, 11)) | 0; s ^= s >>> 3; s = (s + Math.imul(x | i, 7)) | 0; s ^= s << 11;
    s = (s + Math.imul(x & i, 5)) | 0; s ^= s >>> 5; s = (s + Math.imul(x ^ i, 3)) | 0; s ^= s << 13;
    s = (s + Math.imul(x | i, 37)) | 0; s ^= s >>> 17; s = (s + Math.imul(x & i, 41)) | 0; s ^= s << 17;
    s = (s + Math.imul(x ^ i, 43)) | 0; s ^= s >>> 19; s = (s + Math.imul(x | i, 47)) | 0; s ^= s << 19;
    s = (s + Math.imul(x & i, 53)) | 0; s ^= s >>> 23; s = (s + Math.imul(x ^ i, 59)) | 0; s ^= s << 23;
  }
  return s;
}

function coldOne(x) {
  let s = x | 0;
  for (let i = 0; i < 40; i++) {
    s = (s + Math.imul(x ^ i, 31)) | 0; s ^= s >>> 7; s = (s + Math.imul(x | i, 29)) | 0; s ^= s << 3;
    s = (s + Math.imul(x & i, 23)) | 0; s ^= s >>> 11; s = (s + Math.imul(x ^ i, 19)) | 0; s ^= s << 5;
    s = (s + Math.imul(x | i, 17)) | 0; s ^= s >>> 13; s = (s + Math.imul(x & i, 13)) | 0; s ^= s << 7;
    s = (s + Math.imul(x ^ i, 11)) | 0; s ^= s >>> 3; s = (s + Math.imul(x | i, 7)) | 0; s ^= s << 11;
    s = (s + Math.imul(x & i, 5)) | 0; s ^= s >>> 5; s = (s + Math.imul(x ^ i, 3)) | 0; s ^= s << 13;
    s = (s + Math.imul(x | i, 37)) | 0; s ^= s >>> 17; s = (s + Math.imul(x & i, 41)) | 0; s ^= s << 17;
    s = (s + Math.imul(x ^ i, 43)) | 0; s ^= s >>> 19; s = (s + Math.imul(x | i, 47)) | 0; s ^= s << 19;
    s = (s + Math.imul(x & i, 53)) | 0; s ^= s >>> 23; s = (s + Math.imul(x ^ i, 59)) | 0; s ^= s << 23;
  }
  return s;
}

function pick(i) {
  return (i & 3) !== 3 ? hotThree(i) : coldOne(i);
}

function run(n) {
  for (let i = 0; i < n; i++)
    sink = (sink + pick(i)) | 0;
}

function main() {
  const seconds = Number(process.argv[2] || 5);
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end)
    run(1000);
  console.log(sink);
}

main();
