// Command echo is the lab's test workload: an HTTP server that answers every request with who it is
// (pod name and IP, from the environment) and who asked, and a TCP echo on a second port.
//
//	echo [-http :8080] [-tcp :9000]
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
)

func main() {
	httpAddr := flag.String("http", ":8080", "HTTP listen address")
	tcpAddr := flag.String("tcp", ":9000", "TCP echo listen address (empty: off)")
	flag.Parse()
	host, _ := os.Hostname()
	if *tcpAddr != "" {
		l, err := net.Listen("tcp", *tcpAddr)
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
			}
		}()
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host=%s pod=%s podIP=%s node=%s client=%s\n", host, os.Getenv("POD_NAME"), os.Getenv("POD_IP"), os.Getenv("NODE_NAME"), r.RemoteAddr)
	})
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	log.Fatal(http.ListenAndServe(*httpAddr, nil))
}
