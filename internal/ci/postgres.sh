#!/usr/bin/env bash
# Installs Debian's PostgreSQL, starts a cluster listening on loopback only,
# and creates the role and database the sqlmod tests use. Idempotent: run
# it again and it only checks. Needs root (CI runs as root) and apt.
#
# The tests find the server at the DSN printed last (their default); set
# DRAINFX_TEST_POSTGRES_DSN to point them elsewhere.
set -euo pipefail

DB=drainfx
ROLE=drainfx
PASSWORD=drainfx
PORT=${DRAINFX_PG_PORT:-5432}
DSN="postgres://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB?sslmode=disable"

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq postgresql >/dev/null
fi
VERSION=$(ls /usr/lib/postgresql | sort -V | tail -n1)

# The package creates the cluster "main" (but a container has no init
# system to start it). Create it if it is missing, on loopback only.
if ! pg_lsclusters -h | awk '{print $1, $2}' | grep -qx "$VERSION main"; then
	pg_createcluster "$VERSION" main --port "$PORT" -- --auth-local=peer --auth-host=scram-sha-256
fi
# Debian's postgresql.conf includes conf.d/: settings there win.
cat >"/etc/postgresql/$VERSION/main/conf.d/drainfx.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
CONF
if ! pg_lsclusters -h | awk -v v="$VERSION" '$1 == v && $2 == "main" {print $4}' | grep -qx online; then
	pg_ctlcluster "$VERSION" main start
fi

for _ in $(seq 1 60); do
	pg_isready -q -h 127.0.0.1 -p "$PORT" && break
	sleep 0.5
done
pg_isready -h 127.0.0.1 -p "$PORT"

psql_admin() { su postgres -c "psql -X -q -v ON_ERROR_STOP=1 -p $PORT $*"; }
psql_admin "-d postgres" <<SQL
DO \$\$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
		CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD';
	END IF;
END
\$\$;
SQL
if [ "$(psql_admin "-d postgres -tAc \"SELECT 1 FROM pg_database WHERE datname = '$DB'\"")" != 1 ]; then
	psql_admin "-d postgres -c 'CREATE DATABASE $DB OWNER $ROLE'"
fi

echo "postgres ready: DRAINFX_TEST_POSTGRES_DSN=$DSN"
