#!/usr/bin/env bash
# Starts or stops nginx on 127.0.0.1 with a fresh self-signed certificate, for the HTTPS tests.
#   nginx_fixture.sh start DIR   -> serves DIR/www over https, prints the port; DIR/cert.pem
#   nginx_fixture.sh stop DIR
# Locations: /files/ (static, Range supported), /redirect/X -> 302 -> /files/X, /loop/ (a
# redirect loop), /auth/X (401 unless "Authorization: Bearer sekrit").
set -euo pipefail
cmd=$1 dir=$2
if [[ $cmd == stop ]]; then
  [[ -f $dir/nginx.pid ]] && kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true
  exit 0
fi
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $nginx ]] || { echo "nginx not installed" >&2; exit 3; }
command -v openssl >/dev/null || { echo "openssl not installed" >&2; exit 3; }
mkdir -p "$dir/tmp"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
for attempt in 1 2 3 4 5; do
  port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
  cat > "$dir/nginx.conf" <<CONF
daemon on;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 64; }
http {
  access_log $dir/access.log;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $dir/cert.pem;
    ssl_certificate_key $dir/key.pem;
    root $dir/www;
    location /files/ { }
    location /redirect/ { rewrite ^/redirect/(.*)\$ /files/\$1 redirect; }
    location /loop/ { return 302 /loop/; }
    location /auth/ {
      if (\$http_authorization != "Bearer sekrit") { return 401; }
      rewrite ^/auth/(.*)\$ /files/\$1 last;
    }
  }
}
CONF
  if "$nginx" -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" 2>>"$dir/start.log"; then
    echo "$port"
    exit 0
  fi
done
cat "$dir/start.log" >&2
exit 1
