// Go's netpoller (epoll, an eventfd or pipe to wake it, timers) under umon: os.Pipe ends are
// non-blocking and parked in the poller, goroutines pass data through them, deadlines and
// time.After fire; with "exec", os/exec runs a program and reads its output through pipes.
// Output is deterministic so it compares with the native run.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

func pipes() {
	const n = 8
	var wg sync.WaitGroup
	sums := make([]int, n)
	for i := 0; i < n; i++ {
		r, w, err := os.Pipe()
		if err != nil {
			fmt.Println("pipe:", err)
			os.Exit(1)
		}
		wg.Add(2)
		go func(i int) {
			defer wg.Done()
			for k := 0; k < 200; k++ {
				w.Write(bytes.Repeat([]byte{byte(i + 1)}, 100))
			}
			w.Close()
		}(i)
		go func(i int) {
			defer wg.Done()
			b, _ := io.ReadAll(r)
			for _, c := range b {
				sums[i] += int(c)
			}
			r.Close()
		}(i)
	}
	wg.Wait()
	fmt.Println("pipe sums:", sums)

	r, w, _ := os.Pipe()
	r.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_, err := r.Read(make([]byte, 1))
	fmt.Println("read deadline:", os.IsTimeout(err))
	got := make(chan string)
	go func() {
		b := make([]byte, 5)
		r.SetReadDeadline(time.Time{})
		n, _ := r.Read(b)
		got <- string(b[:n])
	}()
	select {
	case s := <-got:
		fmt.Println("too early:", s)
	case <-time.After(20 * time.Millisecond):
		fmt.Println("time.After fired first")
	}
	w.Write([]byte("hello"))
	fmt.Println("then read:", <-got)
	t := time.NewTicker(5 * time.Millisecond)
	for i := 0; i < 3; i++ {
		<-t.C
	}
	t.Stop()
	fmt.Println("ticker ticked 3 times")
}

func run() {
	out, err := exec.Command("/bin/echo", "hello", "from", "exec").Output()
	fmt.Printf("echo: %q %v\n", out, err)
	cmd := exec.Command("/bin/sh", "-c", "read x; echo got $x; exit 3")
	cmd.Stdin = bytes.NewBufferString("line\n")
	out, err = cmd.Output()
	fmt.Printf("sh: %q %v\n", out, err)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "exec" {
		run()
		return
	}
	pipes()
}
