// Go's clocks through the vDSO (tests/vdso.rs): the runtime finds __vdso_clock_gettime
// (LINUX_2.6) by AT_SYSINFO_EHDR and reads time.Now and the monotonic clock from it. A million
// readings must never go back and the wall clock must agree with the monotonic one; the output
// has no times in it, so it compares with the native run.
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	start := time.Now()
	last := start
	backwards := 0
	for i := 0; i < 1_000_000; i++ {
		now := time.Now()
		if now.Sub(last) < 0 {
			backwards++
		}
		last = now
	}
	elapsed := time.Since(start)
	wall := last.Round(0).Sub(start.Round(0)) // wall-clock difference, no monotonic reading
	skew := wall - last.Sub(start)
	if skew < 0 {
		skew = -skew
	}
	fmt.Printf("1000000 readings, %d backwards\n", backwards)
	fmt.Printf("elapsed positive: %v\n", elapsed > 0)
	fmt.Printf("wall and monotonic agree within 1ms: %v\n", skew < time.Millisecond)
	fmt.Printf("year plausible: %v\n", start.Year() >= 2024)
	if backwards != 0 || elapsed <= 0 || skew >= time.Millisecond {
		os.Exit(1)
	}
}
