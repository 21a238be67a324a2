package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// accessLog writes one JSON line per request served by the fronts; nil when access logs are
// off (the default).
var accessLog atomic.Pointer[accessLogger]

// SetAccessLog writes an access log line per request to w (nil turns access logs off).
func SetAccessLog(w io.Writer) {
	if w == nil {
		accessLog.Store(nil)
		return
	}
	accessLog.Store(&accessLogger{w: w})
}

type accessLogger struct {
	mu sync.Mutex
	w  io.Writer
}

// accessEntry is one access log line.
type accessEntry struct {
	Time       string  `json:"time"`
	RemoteAddr string  `json:"remote_addr"`
	Method     string  `json:"method"`
	Host       string  `json:"host"`
	URI        string  `json:"uri"`
	Proto      string  `json:"proto"`
	Status     int     `json:"status"`
	Bytes      int64   `json:"bytes"`
	Duration   float64 `json:"duration_seconds"`
	TLS        bool    `json:"tls"`
}

// serveLogged serves r with h and logs it.
func (l *accessLogger) serveLogged(h http.Handler, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	h.ServeHTTP(rec, r)
	e := accessEntry{
		Time: start.UTC().Format(time.RFC3339Nano), RemoteAddr: r.RemoteAddr, Method: r.Method, Host: r.Host,
		URI: r.RequestURI, Proto: r.Proto, Status: rec.status, Bytes: rec.bytes,
		Duration: time.Since(start).Seconds(), TLS: r.TLS != nil,
	}
	if e.Status == 0 {
		e.Status = http.StatusOK
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.w.Write(append(b, '\n'))
}
