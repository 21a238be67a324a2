package bench

import (
	"fmt"
	"strings"
)

// Nginx is Debian's nginx configured as a plain reverse proxy, as the benchmarks compare
// plexus-ingress with it: keep-alive connections on both sides, HTTP/1.1 to the backends, no
// access log, the X-Forwarded-* headers plexus-ingress sends too.
type Nginx struct {
	// Dir holds nginx's pid file, error log and temporary folders.
	Dir string
	// Listen is the address:port nginx serves on; Host the server_name.
	Listen, Host string
	// Upstreams are the backends (address:port), round-robin.
	Upstreams []string
	// Workers is worker_processes: as many as the machine has CPUs, like Go's GOMAXPROCS.
	Workers int
}

// Config returns the nginx.conf.
func (n Nginx) Config() string {
	var servers strings.Builder
	for _, u := range n.Upstreams {
		fmt.Fprintf(&servers, "server %s; ", u)
	}
	return fmt.Sprintf(`daemon off;
worker_processes %[1]d;
pid %[2]s/nginx.pid;
error_log %[2]s/nginx-error.log error;
events { worker_connections 4096; }
http {
  access_log off;
  # nginx closes a client connection after 1,000 requests by default; the load generator keeps
  # its connections, as it does with plexus-ingress.
  keepalive_requests 1000000;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  # Like plexus-ingress's transport (keeps every idle backend connection, no request limit):
  # nginx's defaults made it redial a backend about once per 1,000 requests.
  upstream backend { %[3]skeepalive 1024; keepalive_requests 1000000; }
  server {
    listen %[4]s;
    server_name %[5]s;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      # plexus-ingress (Caddy) sends these to the backend too, as ingress-nginx does.
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }
  }
}
`, n.Workers, n.Dir, servers.String(), n.Listen, n.Host)
}
