#!/usr/bin/env bash
# Start PostgreSQL and Redis on this machine when they are down, and create the
# per-context databases. Safe to run repeatedly.
set -euo pipefail

PGHOST=${PGHOST:-127.0.0.1}
PGUSER=${PGUSER:-postgres}

if ! pg_isready -q -h "$PGHOST" -p 5432 2>/dev/null; then
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h "$PGHOST" -p 5432 && break; sleep 1; done
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "services: starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi

for ctx in $(cd "$(dirname "$0")/.." && python3 -m shop.contexts); do
  db="shop_${ctx}"
  if ! psql -h "$PGHOST" -U "$PGUSER" -tAc "SELECT 1 FROM pg_database WHERE datname='${db}'" | grep -q 1; then
    psql -h "$PGHOST" -U "$PGUSER" -qc "CREATE DATABASE ${db}"
    echo "services: created database ${db}"
  fi
done
