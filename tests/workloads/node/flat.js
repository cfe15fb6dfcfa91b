// SPDX-License-Identifier: Apache-2.0
// A leaf whose body calls nothing, for the V8 walker's line of an interrupted
// interpreted frame: the interpreter writes a frame's bytecode offset to its
// slot only at calls, so the offset of the frame sampled is its register's.
//
//   node flat.js SECONDS
'use strict';

function flat(n) {
  let a = 1, b = 2, c = 3;
  for (let i = 0; i < n; i++) {
    a = (a + i) | 0;
    b = (b ^ a) | 0;
    c = (c + (b >>> 3)) | 0;
    a = (a * 3 + c) | 0;
  }
  return a + b + c;
}

const end = Date.now() + Number(process.argv[2] || 5) * 1000;
let s = 0;
while (Date.now() < end)
  s ^= flat(100000);
console.log(s);
