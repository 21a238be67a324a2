package bench

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Result is what a load run measured.
type Result struct {
	Requests int
	Errors   int
	Duration time.Duration
	P50, P99 time.Duration
}

// RPS is the successful requests per second.
func (r Result) RPS() float64 { return float64(r.Requests) / r.Duration.Seconds() }

// Load sends GET requests for host over conns, already connected (one request at a time per
// connection, keep-alive), for d, and measures every request's latency. A connection that fails
// stops; its failure counts as an error.
func Load(conns []net.Conn, host string, d time.Duration) Result {
	req := []byte(fmt.Sprintf("GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: plexus-bench\r\n\r\n", host))
	deadline := time.Now().Add(d)
	lat := make([][]time.Duration, len(conns))
	errs := make([]int, len(conns))
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range conns {
		wg.Add(1)
		go func(i int, c net.Conn) {
			defer wg.Done()
			br := bufio.NewReader(c)
			own := make([]time.Duration, 0, 1<<14)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if _, err := c.Write(req); err != nil {
					errs[i]++
					break
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs[i]++
					break
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					errs[i]++
					continue
				}
				own = append(own, time.Since(t0))
			}
			lat[i] = own
		}(i, c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	r := Result{Duration: elapsed}
	for i := range conns {
		all = append(all, lat[i]...)
		r.Errors += errs[i]
	}
	r.Requests = len(all)
	if len(all) > 0 {
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		r.P50 = all[len(all)*50/100]
		r.P99 = all[len(all)*99/100]
	}
	return r
}
