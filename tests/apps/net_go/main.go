// A net/http server for tests/net.rs: it listens on the port given as argument 1 and answers
// GET /hello/N with "hello N from go" and GET /quit by ending the process, so the test can
// check its exit status (after the answer to /quit went out). Go's runtime serves the connections through its netpoller (epoll)
// on several threads.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: net_go PORT")
		os.Exit(2)
	}
	var served atomic.Int64
	ln, err := net.Listen("tcp", ":"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	fmt.Println("listening")
	done := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/hello/", func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		fmt.Fprintf(w, "hello %s from go", strings.TrimPrefix(r.URL.Path, "/hello/"))
	})
	mux.HandleFunc("/quit", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "bye")
		close(done)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	<-done
	// Shutdown lets the /quit answer go out before the process ends.
	srv.Shutdown(context.Background())
	fmt.Printf("served %d\n", served.Load())
}
