# Sourced by scripts/bench.sh: starts the servers under test and the shared
# upstream, provisions the client applications, and checks TLS session
# resumption; defines port(). Reads W, BIN, HERE, the ports (SB PR AD UP NX NXP HA HAP) and
# AUDIT_DURABILITY; sets SERVE_PID, NGINX_PID, HAPROXY_PID, SB_TOK, PR_TOK,
# CID, URLP. Everything is bound to 127.0.0.1.
URLP=/opale/v1/entreprises/732829320/declarations?annee=2024

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

opale_common() { # admin-port -> the config sections every measured opale shares
  cat <<CFG
[admin]
listen = "127.0.0.1:$1"
[audit]
durability = "$AUDIT_DURABILITY"
[log]
filter = "warn"
# The load generator and the 1 000 idle connections all come from
# 127.0.0.1: lift the per-address cap (512 by default) as nginx and
# HAProxy have none.
[limits]
max_connections_per_ip = 10000
CFG
}

wait_opale() { # sandbox-port log -> returns once /etatSante answers (exits if it never does)
  local _
  for _ in $(seq 150); do
    curl -s -o /dev/null --cacert "$W/certs/ca.pem" "https://localhost:$1/opale/v1/etatSante" 2>/dev/null && return
    sleep 0.1
  done
  echo "opale did not start:" >&2; cat "$2" >&2; exit 1
}

start_opale() { # the gateway under test; writes the development PKI in $W/certs
  { cat <<CFG
data_dir = "$W/data"
certs_dir = "$W/certs"
[sandbox]
listen = "127.0.0.1:$SB"
[production]
listen = "127.0.0.1:$PR"
upstream = "http://127.0.0.1:$UP"
CFG
    opale_common "$AD"; } > "$W/opale.toml"
  "$BIN" serve --config "$W/opale.toml" > "$W/serve.log" 2>&1 &
  SERVE_PID=$!
  wait_opale "$SB" "$W/serve.log"
}

start_upstream() { # the shared upstream: its own nginx, static JSON, no TLS
  mkdir -p "$W/up/opale/v1/entreprises/732829320"
  printf '{"siren":"732829320","annee":2024,"declarations":[{"formulaire":"2065","montant":"12345.67"}]}' \
    > "$W/up/opale/v1/entreprises/732829320/declarations"
  chmod -R a+rX "$W/up"
  cat > "$W/up.conf" <<NGX
worker_processes auto;
pid $W/up.pid;
error_log $W/up-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  default_type application/json;
  server { listen 127.0.0.1:$UP; root $W/up; keepalive_requests 1000000; }
}
NGX
  nginx -e "$W/up-error.log" -c "$W/up.conf" -p "$W"
}

nginx_tls() { # the mTLS settings shared by the measured and the probe server
  cat <<NGX
    ssl_certificate $W/certs/server.pem;
    ssl_certificate_key $W/certs/server.key;
    ssl_client_certificate $W/certs/production-ca.pem;
    ssl_verify_client on;
    ssl_protocols TLSv1.2 TLSv1.3;   # 1.22's default lacks TLS 1.3 (added in 1.23.4)
NGX
}

start_nginx() { # nginx under test: mTLS + proxy, its own master and workers
  cat > "$W/px.conf" <<NGX
worker_processes auto;
worker_rlimit_nofile 8192;
pid $W/px.pid;
error_log $W/px-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  log_format probe '\$ssl_session_reused \$ssl_protocol \$ssl_curve';
  upstream opale_up { server 127.0.0.1:$UP; keepalive 128; }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Authorization "";
  server {
    listen 127.0.0.1:$NX ssl;
$(nginx_tls)
    keepalive_requests 1000000;
    location / { proxy_pass http://opale_up; }
  }
  server {   # same TLS, with an access log: resumption probe only
    listen 127.0.0.1:$NXP ssl;
$(nginx_tls)
    access_log $W/nginx-probe.log probe;
    location / { proxy_pass http://opale_up; }
  }
}
NGX
  nginx -e "$W/px-error.log" -c "$W/px.conf" -p "$W"
  NGINX_PID=$(cat "$W/px.pid")
}

start_haproxy() { # HAProxy under test: mTLS + proxy, one process, nbthread = CPUs
  cat "$W/certs/server.pem" "$W/certs/server.key" > "$W/haproxy-server.pem"
  local bind="ssl crt $W/haproxy-server.pem ca-file $W/certs/production-ca.pem verify required alpn http/1.1"
  cat > "$W/haproxy.cfg" <<HAP
global
  maxconn 8192
  log stdout format raw local0
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
frontend measured
  bind 127.0.0.1:$HA $bind
  http-request del-header Authorization
  default_backend upstream
frontend probe
  bind 127.0.0.1:$HAP $bind
  log global
  log-format "%[ssl_fc_is_resumed] %[ssl_fc_protocol]"
  http-request del-header Authorization
  default_backend upstream
backend upstream
  http-reuse always
  server up 127.0.0.1:$UP maxconn 1024
HAP
  haproxy -db -f "$W/haproxy.cfg" > "$W/haproxy.log" 2>&1 &
  HAPROXY_PID=$!
  sleep 0.5
  kill -0 "$HAPROXY_PID" || { echo "haproxy did not start:" >&2; cat "$W/haproxy.log" >&2; exit 1; }
}

provision() { # env -> client_id; writes $W/<env>.pem/.key
  local env=$1 cid
  cid=$("${A[@]}" app add --partner "$PARTNER" --name "bench-$env" --env "$env" --grant declarations:2020-2025 \
        --valid-from 2025-01-01 --valid-until "$(date -u -d '+3 years' +%F)" --ip 127.0.0.1/32 --quota 1000000 \
        | python3 -c 'import json,sys;print(json.load(sys.stdin)["client_id"])')
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=bench-$env" \
    -keyout "$W/$env.key" -out "$W/$env.csr" 2>/dev/null
  "${A[@]}" cert issue "$cid" --csr "$W/$env.csr" --out "$W/$env.pem" >/dev/null 2>&1
  echo "$cid"
}

token() { # env port cid -> access token
  curl -s --cacert "$W/certs/ca.pem" --cert "$W/$1.pem" --key "$W/$1.key" \
    -d grant_type=client_credentials -d client_id="$3" "https://localhost:$2/token" \
    | python3 -c 'import json,sys;print(json.load(sys.stdin)["access_token"])'
}

provision_clients() { # one partner, one application and certificate per environment
  A=("$BIN" admin --config "$W/opale.toml" --json)
  PARTNER=$("${A[@]}" partner add --siren 732829320 --name Bench | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
  local sb_cid pr_cid
  sb_cid=$(provision sandbox); pr_cid=$(provision production)
  SB_TOK=$(token sandbox "$SB" "$sb_cid"); PR_TOK=$(token production "$PR" "$pr_cid")
  CID=$(python3 -c 'import uuid;print(uuid.uuid4())')
}

count_reused() { # log file -> "R of N" (first field: r/1 = resumed)
  awk '{n++} $1=="r"||$1=="1"{r++} END{printf "%d of %d", r, n}' "$1"
}

check_resumption() { # writes $W/resumption.md: who resumes TLS sessions
  local hdr=(-H "Authorization: Bearer $PR_TOK" -H "X-Correlation-ID: $CID") p t
  local cert=(--cert "$W/production.pem" --key "$W/production.key")
  {
    echo "TLS session resumption (new-connection mode must do full handshakes):"
    for p in "nginx $NXP $W/nginx-probe.log" "haproxy $HAP $W/haproxy.log"; do
      set -- $p; : > "$3"
      oha -n 200 -c 4 --disable-keepalive --no-tui --output-format json --cacert "$W/certs/ca.pem" \
        "${cert[@]}" "${hdr[@]}" "https://localhost:$2$URLP" >/dev/null
      sleep 0.3; echo "- oha --disable-keepalive -> $1: $(count_reused "$3") connections resumed (server log)"
      : > "$3"
      python3 "$HERE/bench-newconn.py" --port "$2" --path "$URLP" "${cert[@]}" --ca "$W/certs/ca.pem" \
        -c 4 -z 1 "${hdr[@]}" >/dev/null
      sleep 0.3; echo "- bench-newconn.py -> $1: $(count_reused "$3") connections resumed (server log)"
    done
    for t in "production $PR production $PR_TOK" "sandbox $SB sandbox $SB_TOK" \
             "nginx $NX production $PR_TOK" "haproxy $HA production $PR_TOK"; do
      set -- $t
      echo "- $1 resumes a session when the client offers one: $(python3 "$HERE/bench-newconn.py" \
        --probe-resumption --port "$2" --path "$URLP" --cert "$W/$3.pem" --key "$W/$3.key" \
        --ca "$W/certs/ca.pem" -H "Authorization: Bearer $4" -H "X-Correlation-ID: $CID")"
    done
    echo
  } > "$W/resumption.md"
  cat "$W/resumption.md" >&2
}
