// Go's asynchronous preemption (CGO_ENABLED=0): with one P, a goroutine spinning in a loop
// without function calls never yields; the main goroutine runs again only because the runtime's
// sysmon thread sends SIGURG to the thread running the spinner (tgkill) and its handler
// preempts it. Under umon that needs a handled signal delivered to another thread that is
// running guest code: the kick.
package main

import (
	"fmt"
	"runtime"
	"sync/atomic"
)

var spins uint64

func spin() {
	for {
		atomic.AddUint64(&spins, 1)
	}
}

func main() {
	runtime.GOMAXPROCS(1)
	go spin()
	for atomic.LoadUint64(&spins) == 0 {
		runtime.Gosched()
	}
	// The spinner has started; only a preemption brings this goroutine back.
	runtime.Gosched()
	fmt.Println("main ran again while a goroutine spins: preempted")
}
