// Command echo is the lab's test workload: an HTTP server that answers every request with who it is
// (pod name and IP, from the environment) and who asked, a TCP echo on a second port, optionally a
// UDP echo, optionally echo ports served over TCP, UDP and SCTP at once (the NetworkPolicy truth
// table's servers), and optionally a validating admission webhook served over TLS. `echo probe`
// is the client of those ports: it tries many targets in parallel and prints one JSON line.
//
//	echo [-http :8080] [-tcp :9000] [-udp :9001] [-serve 80,81] [-webhook :8443 -tls-cert F -tls-key F]
//	echo -dnsload :8090   (only the DNS load generator, dnsload.go)
//	echo probe [-timeout 1s] tcp/10.244.1.5:80 udp/[fd00:10:244:1::5]:81 sctp/10.244.2.7:80 ...
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
	if len(os.Args) > 1 && os.Args[1] == "probe" {
		if err := runProbe(os.Args[2:]); err != nil {
			log.Fatal(err)
		}
		return
	}
	httpAddr := flag.String("http", ":8080", "HTTP listen address")
	tcpAddr := flag.String("tcp", ":9000", "TCP echo listen address (empty: off)")
	udpAddr := flag.String("udp", "", "UDP echo listen address (empty: off)")
	webhookAddr := flag.String("webhook", "", "HTTPS listen address of the admission webhook /validate (empty: off)")
	certFile := flag.String("tls-cert", "", "the webhook's certificate (PEM)")
	keyFile := flag.String("tls-key", "", "the webhook's private key (PEM)")
	dnsLoadAddr := flag.String("dnsload", "", "HTTP listen address of the DNS load generator (dnsload.go); when set, echo runs only that")
	serve := flag.String("serve", "", "ports to echo on over TCP, UDP and SCTP, both families (e.g. 80,81; empty: off)")
	flag.Parse()
	if *dnsLoadAddr != "" {
		log.Fatal(serveDNSLoad(*dnsLoadAddr))
	}
	ports, err := parsePorts(*serve)
	if err != nil {
		log.Fatal(err)
	}
	if len(ports) > 0 {
		sctpErr := make(chan error, 2)
		if err := serveProbePorts(ports, sctpErr); err != nil {
			log.Fatal(err)
		}
		// A lab without raw sockets cannot serve SCTP: say so and stop, rather than fail probes.
		go func() { log.Fatal(<-sctpErr) }()
	}
	host, _ := os.Hostname()
	if *tcpAddr != "" {
		l, err := net.Listen("tcp", *tcpAddr)
		if err != nil {
			log.Fatal(err)
		}
		go serveTCPEcho(l)
	}
	if *udpAddr != "" {
		pc, err := net.ListenPacket("udp", *udpAddr)
		if err != nil {
			log.Fatal(err)
		}
		go serveUDPEcho(pc)
	}
	if *webhookAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/validate", validate)
		go func() { log.Fatal(http.ListenAndServeTLS(*webhookAddr, *certFile, *keyFile, mux)) }()
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host=%s pod=%s podIP=%s node=%s client=%s\n", host, os.Getenv("POD_NAME"), os.Getenv("POD_IP"), os.Getenv("NODE_NAME"), r.RemoteAddr)
	})
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	log.Fatal(http.ListenAndServe(*httpAddr, nil))
}

// serveTCPEcho echoes every connection of l back to its sender.
func serveTCPEcho(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
	}
}

// serveUDPEcho sends every datagram back to its sender.
func serveUDPEcho(pc net.PacketConn) {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		_, _ = pc.WriteTo(buf[:n], from)
	}
}
