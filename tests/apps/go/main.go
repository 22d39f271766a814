// Go's runtime on threads (CGO_ENABLED=0): goroutines over GOMAXPROCS OS threads, channels
// (unbuffered, buffered, select, close), sync.WaitGroup, Mutex, Once, atomics, a parallel sum with
// GOMAXPROCS workers, time.Sleep and timers. Output is deterministic so it compares with the
// native run.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

func pingPong() {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
		close(pong)
	}()
	v := 0
	for i := 0; i < 10000; i++ {
		ping <- v
		v = <-pong
	}
	close(ping)
	_, open := <-pong
	fmt.Printf("ping-pong: %d round trips, value %d, closed %v\n", 10000, v, !open)
}

func parallelSum() {
	workers := runtime.GOMAXPROCS(0)
	const n = 4_000_000
	results := make(chan uint64, workers)
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, (w+1)*chunk
		if hi > n {
			hi = n
		}
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			var s uint64
			for i := lo; i < hi; i++ {
				x := uint64(i)
				s += x * x % 1_000_003
			}
			results <- s
		}(lo, hi)
	}
	wg.Wait()
	close(results)
	var total uint64
	for s := range results {
		total += s
	}
	var serial uint64
	for i := 0; i < n; i++ {
		x := uint64(i)
		serial += x * x % 1_000_003
	}
	// GOMAXPROCS is the CPUs sched_getaffinity reports: the host's natively, --cpus under umon.
	fmt.Printf("parallel sum over GOMAXPROCS=%d workers: %d, equals serial: %v\n", workers, total, total == serial)
}

func manyGoroutines() {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var count int64
	var atomicCount int64
	for i := 0; i < 10000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			count++
			mu.Unlock()
			atomic.AddInt64(&atomicCount, 1)
			runtime.Gosched()
		}()
	}
	wg.Wait()
	fmt.Printf("goroutines: 10000 done, mutex count %d, atomic count %d\n", count, atomicCount)
}

func selectAndTimers() {
	start := time.Now()
	time.Sleep(5 * time.Millisecond)
	slept := time.Since(start) >= 5*time.Millisecond
	timer := time.NewTimer(10 * time.Millisecond)
	never := make(chan int)
	var which string
	select {
	case <-never:
		which = "never"
	case <-timer.C:
		which = "timer"
	}
	ticker := time.NewTicker(time.Millisecond)
	ticks := 0
	for range ticker.C {
		ticks++
		if ticks == 5 {
			break
		}
	}
	ticker.Stop()
	buf := make(chan int, 3)
	buf <- 1
	buf <- 2
	buf <- 3
	select {
	case buf <- 4:
		which += ", buffered send fit"
	default:
		which += ", buffered channel full"
	}
	fmt.Printf("sleep 5ms lasted at least 5ms: %v; select: %s; ticks %d\n", slept, which, ticks)
}

func onceAndCond() {
	var once sync.Once
	var inits int32
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			once.Do(func() { atomic.AddInt32(&inits, 1) })
		}()
	}
	wg.Wait()
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	ready := false
	woke := int32(0)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			for !ready {
				cond.Wait()
			}
			mu.Unlock()
			atomic.AddInt32(&woke, 1)
		}()
	}
	mu.Lock()
	ready = true
	cond.Broadcast()
	mu.Unlock()
	wg.Wait()
	fmt.Printf("once ran %d time(s); cond broadcast woke %d\n", inits, woke)
}

func lockedThreads() {
	// Goroutines pinned to OS threads force the runtime to make more threads.
	var wg sync.WaitGroup
	results := make([]int, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			runtime.Gosched()
			results[i] = i * 3
		}(i)
	}
	wg.Wait()
	sum := 0
	for _, r := range results {
		sum += r
	}
	fmt.Printf("locked OS threads: sum %d\n", sum)
}

// main runs the thread sections ("threads"), the timer sections ("timers": Go's timers sleep in
// its netpoller, which needs epoll), or both (no argument).
func main() {
	which := "all"
	if len(os.Args) > 1 {
		which = os.Args[1]
	}
	if which == "all" || which == "threads" {
		pingPong()
		parallelSum()
		manyGoroutines()
		onceAndCond()
		lockedThreads()
	}
	if which == "all" || which == "timers" {
		selectAndTimers()
	}
	runtime.GC()
	fmt.Println("done")
	os.Exit(0)
}
