// SPDX-License-Identifier: Apache-2.0
// A class constructor on the stack (V8 gives class constructors a function type
// of their own): make -> Hot's constructor, which does the work.
//
//   node ctor.js SECONDS
'use strict';

class Hot {
  constructor(n) {
    let s = 0;
    for (let i = 0; i < n; i++)
      s = (s + i) | 0;
    this.s = s;
  }
}

function make() {
  return new Hot(100000).s;
}

const end = Date.now() + Number(process.argv[2] || 5) * 1000;
let x = 0;
while (Date.now() < end)
  x ^= make();
console.log(x);
