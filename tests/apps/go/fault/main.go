// Nil dereferences recovered: Go's runtime catches the SIGSEGV (SEGV_MAPERR, si_addr below
// 0x1000) on the faulting thread and turns it into a panic that recover() sees. Run in a
// goroutine and on the main goroutine, many times, plus a nil map write (a runtime check, no
// fault) for contrast. Output is deterministic so it compares with the native run.
package main

import (
	"fmt"
	"os"
)

type node struct {
	pad  [64]byte
	next *node
	val  int
}

//go:noinline
func deref(p *int) int { return *p }

//go:noinline
func field(n *node) int { return n.val }

func try(name string, f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprintf("%s: recovered: %v", name, r)
		}
	}()
	f()
	return name + ": no panic"
}

func main() {
	done := make(chan string)
	go func() {
		done <- try("goroutine nil pointer", func() { deref(nil) })
	}()
	fmt.Println(<-done)
	fmt.Println(try("main nil pointer", func() { deref(nil) }))
	fmt.Println(try("nil struct field", func() { field(nil) }))
	fmt.Println(try("nil map write", func() {
		var m map[string]int
		m["x"] = 1
	}))
	n := 0
	for i := 0; i < 200; i++ {
		if m := try("loop", func() { deref(nil) }); m != "loop: no panic" {
			n++
		}
	}
	fmt.Println("recovered in a loop:", n)
	os.Exit(0)
}
