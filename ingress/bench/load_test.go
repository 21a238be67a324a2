package bench

import (
	"bufio"
	"strings"
	"testing"
)

func TestReadResponse(t *testing.T) {
	raw := "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 5\r\n\r\nhello" +
		"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
	br := bufio.NewReader(strings.NewReader(raw))
	status, size, err := readResponse(br)
	if err != nil || status != 200 || size != len(raw)-len("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n") {
		t.Fatalf("first response: status %d, size %d, err %v", status, size, err)
	}
	if status, _, err = readResponse(br); err != nil || status != 503 {
		t.Fatalf("second response: status %d, err %v", status, err)
	}
	chunked := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	if _, _, err := readResponse(bufio.NewReader(strings.NewReader(chunked))); err == nil {
		t.Fatal("a chunked response was accepted")
	}
}

func TestParseStat(t *testing.T) {
	line := "4242 (nginx: worker (x)) S 4241 4241 1 0 -1 4194624 100 0 0 0 250 75 0 0 20 0 1 0 5 0 0"
	pid, s, err := parseStat(line)
	if err != nil || pid != 4242 || s.ppid != 4241 || s.cpu != 325*clockTick {
		t.Fatalf("pid %d, %+v, err %v", pid, s, err)
	}
	if cpu, err := cpuTime(1); err != nil || cpu <= 0 {
		t.Fatalf("CPU time of init and its descendants: %v, %v", cpu, err)
	}
}
