#!/usr/bin/env bash
# A throwaway PostgreSQL server for the `[input] postgres` end-to-end tests (tests/e2e/postgres.rs).
#
#   eval "$(.ci/postgres.sh start)"   # prints `export PG...=...` lines (also written to $dir/env)
#   .ci/postgres.sh stop              # stops the server and deletes its directory
#
# `start` installs Debian's `postgresql` package if no `initdb` is found (with sudo when not
# root), creates a cluster in a fresh temp dir, listens on 127.0.0.1 only, on a free port, with
# its unix socket in the temp dir, TLS with a throwaway CA ($BLINDLINK_PG_CA) and a certificate
# for `localhost`, and creates a role `blindlink` with a random password (scram-sha-256 over TCP)
# owning a database `blindlink`. As root the server runs as the
# `postgres` user (initdb refuses root). Progress goes to stderr; stdout is only the exports.
set -euo pipefail

find_bin() {
    local name=$1
    if command -v "$name" >/dev/null 2>&1; then
        command -v "$name"
        return
    fi
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$found" ] && echo "$found"
}

start() {
    if [ -z "$(find_bin initdb)" ]; then
        echo "postgres.sh: installing Debian's postgresql (no initdb found)" >&2
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
    fi
    local initdb pg_ctl psql
    initdb=$(find_bin initdb)
    pg_ctl=$(find_bin pg_ctl)
    psql=$(find_bin psql)
    local dir
    dir=$(mktemp -d /tmp/blindlink-pg.XXXXXX)
    chmod 755 "$dir"
    local as=()
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir"
        as=(runuser -u postgres --)
    fi
    local port
    for port in $(seq 54329 54429); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            break
        fi
    done
    local password
    password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    # TLS for `sslmode=require` tests: a throwaway CA and a certificate for localhost (openssl
    # comes with Debian's postgresql, through ssl-cert).
    (
        cd "$dir"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
            -subj "/CN=blindlink test database CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign"
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
        printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.crt \
            -days 2 -extfile server.ext
        chmod 600 server.key ca.key
        chmod 644 ca.pem server.crt
    ) >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; exit 1; }
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/server.key" "$dir/server.crt"
    "${as[@]}" "$initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    "${as[@]}" "$pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=off \
            -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key" \
        start >&2 || { cat "$dir/server.log" >&2; exit 1; }
    "${as[@]}" "$psql" -X -q -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE blindlink LOGIN PASSWORD '$password'" \
        -c "CREATE DATABASE blindlink OWNER blindlink" >&2
    cat >"$dir/env" <<EOF
export PGHOST=127.0.0.1
export PGPORT=$port
export PGUSER=blindlink
export PGPASSWORD=$password
export PGDATABASE=blindlink
export BLINDLINK_PG_DIR=$dir
export BLINDLINK_PG_CA=$dir/ca.pem
EOF
    cat "$dir/env"
    echo "postgres.sh: server on 127.0.0.1:$port, data in $dir" >&2
}

stop() {
    local dir=${1:-${BLINDLINK_PG_DIR:-}}
    if [ -z "$dir" ] || [ ! -d "$dir" ]; then
        echo "postgres.sh: nothing to stop (no BLINDLINK_PG_DIR)" >&2
        return 0
    fi
    local as=()
    [ "$(id -u)" -eq 0 ] && as=(runuser -u postgres --)
    "${as[@]}" "$(find_bin pg_ctl)" -D "$dir/data" -m fast -w stop >&2 || true
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *)
        echo "usage: $0 start | stop [dir]" >&2
        exit 2
        ;;
esac
