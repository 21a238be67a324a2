package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Result is what a load run measured.
type Result struct {
	Requests int
	Errors   int
	Duration time.Duration
	P50, P99 time.Duration
	// ResponseBytes is the size of one response (status line, headers and body) as the client
	// read it, averaged: both proxies must send the same bodies, and headers of similar size.
	ResponseBytes int
}

// RPS is the successful requests per second.
func (r Result) RPS() float64 { return float64(r.Requests) / r.Duration.Seconds() }

// Load sends GET requests for host over conns, already connected (one request at a time per
// connection, keep-alive), for d, and measures every request's latency. A connection that fails
// stops; its failure counts as an error.
//
// The generator shares the CPUs with the proxy it measures, so it parses responses itself
// (status, Content-Length, body) instead of with net/http, which costs several times more per
// response; every proxy gets the same generator.
func Load(conns []net.Conn, host string, d time.Duration) Result {
	req := []byte(fmt.Sprintf("GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: plexus-bench\r\n\r\n", host))
	deadline := time.Now().Add(d)
	lat := make([][]time.Duration, len(conns))
	errs := make([]int, len(conns))
	size := make([]int64, len(conns))
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range conns {
		wg.Add(1)
		go func(i int, c net.Conn) {
			defer wg.Done()
			br := bufio.NewReaderSize(c, 16<<10)
			own := make([]time.Duration, 0, 1<<14)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if _, err := c.Write(req); err != nil {
					errs[i]++
					break
				}
				status, n, err := readResponse(br)
				if err != nil {
					errs[i]++
					break
				}
				if status != 200 {
					errs[i]++
					continue
				}
				size[i] += int64(n)
				own = append(own, time.Since(t0))
			}
			lat[i] = own
		}(i, c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	var bytes int64
	r := Result{Duration: elapsed}
	for i := range conns {
		all = append(all, lat[i]...)
		r.Errors += errs[i]
		bytes += size[i]
	}
	r.Requests = len(all)
	if len(all) > 0 {
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		r.P50 = all[len(all)*50/100]
		r.P99 = all[len(all)*99/100]
		r.ResponseBytes = int(bytes / int64(len(all)))
	}
	return r
}

var contentLength = []byte("content-length:")

// readResponse reads one HTTP/1.1 response with a Content-Length body from br and returns its
// status code and size in bytes. Chunked or unsized bodies are errors: the benchmark's backend
// always sends a Content-Length, so a proxy that drops it is not serving the same response.
func readResponse(br *bufio.Reader) (status, size int, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, 0, fmt.Errorf("status line: %w", err)
	}
	size += len(line)
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, 0, fmt.Errorf("status line %q", line)
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, 0, fmt.Errorf("status line %q: %w", line, err)
	}
	length := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, 0, fmt.Errorf("header: %w", err)
		}
		size += len(line)
		h := bytes.TrimRight(line, "\r\n")
		if len(h) == 0 {
			break
		}
		if len(h) > len(contentLength) && bytes.EqualFold(h[:len(contentLength)], contentLength) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(h[len(contentLength):]))); err != nil {
				return 0, 0, fmt.Errorf("header %q: %w", h, err)
			}
		}
	}
	if length < 0 {
		return 0, 0, fmt.Errorf("response %d without Content-Length", status)
	}
	if _, err := br.Discard(length); err != nil {
		return 0, 0, fmt.Errorf("body: %w", err)
	}
	return status, size + length, nil
}
