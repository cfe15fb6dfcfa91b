// A Go workload, built stripped (-ldflags=-s): function names must come from .gopclntab.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

var sink uint64

//go:noinline
func hotLoop(n int) {
	for i := 0; i < n; i++ {
		sink += uint64(i) * 7
	}
}

//go:noinline
func outer() { hotLoop(5000000) }

func main() {
	secs := 3.0
	if len(os.Args) > 1 {
		secs, _ = strconv.ParseFloat(os.Args[1], 64)
	}
	start := time.Now()
	for time.Since(start).Seconds() < secs {
		outer()
	}
	fmt.Fprintln(os.Stderr, sink > 0)
}
