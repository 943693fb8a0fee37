#!/usr/bin/env bash
# The Things Stack's documented docker-compose upgrade runbook, as a plain script.
# It is the baseline that lorawan.tts is measured against, so it keeps the runbook's
# steps and order; it fixes only what would corrupt data on the spot: pg_dump runs
# with `exec -T` (a TTY turns the binary dump's \n into \r\n), the postgres container
# is found by compose rather than by a guessed name, and Redis 7's appendonlydir/ is
# copied whole. Everything else the runbook lacks (checks, rollback) stays absent.
#
#   bench/runbook.sh DIR VERSION [BACKUP_DIR]
#
# For the benchmark (bench/run) each step also prints `runbook-phase <name> <epoch seconds>` to stderr as it
# begins, and `runbook-phase healthy <epoch seconds>` once the stack is healthy; the steps themselves are unchanged.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 DIR VERSION [BACKUP_DIR]" >&2
    exit 2
fi
dir=$1
version=$2
if ! [[ $version =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]]; then
    echo "runbook: $version is not a TTS version (X.Y or X.Y.Z)" >&2
    exit 2
fi
if [ ! -f "$dir/docker-compose.yml" ]; then
    echo "runbook: $dir has no docker-compose.yml" >&2
    exit 2
fi
backup=${3:-$(mktemp -d "${TMPDIR:-/tmp}/tts-runbook-backup.XXXXXX")}
mkdir -p "$backup"
chmod 0700 "$backup"
cd "$dir"

binary=ttn-lw-stack
services=(stack)
if grep -q 'thethingsindustries/lorawan-stack:' docker-compose.yml; then
    binary=tti-lw-stack
    services=(stack grafana)
fi
step() { printf '%s runbook: %s\n' "$(date -u +%H:%M:%S)" "$*"; }
phase() { printf 'runbook-phase %s %s\n' "$1" "$(date +%s.%N)" >&2; }

phase tag
step "1. set the image tag to $version"
sed -i -E "s#(lorawan-stack(-noc-grafana)?:)[0-9]+\.[0-9]+(\.[0-9]+)?#\1${version}#" docker-compose.yml

phase pull
step "2. pull ${services[*]}"
docker compose pull --quiet "${services[@]}"

phase stop
step "3. stop ${services[*]}, then redis"
docker compose stop "${services[@]}"
docker compose stop redis

phase redis_copy
step "4. copy Redis' append-only file(s), start redis again"
data=${DEV_DATA_DIR:-.env/data}
if [ -d "$data/redis/appendonlydir" ]; then
    cp -a "$data/redis/appendonlydir" "$backup/"
else
    cp -a "$data/redis/appendonly.aof" "$backup/"
fi
docker compose start redis

phase pg_dump
step "5. pg_dump ttn_lorawan"
docker compose exec -T postgres pg_dump -U root --format=c ttn_lorawan > "$backup/ttn_lorawan.dump"
chmod 0600 "$backup/ttn_lorawan.dump"

phase blob_copy
step "6. copy the blob directory"
cp -a blob "$backup/blob"

phase migrate
step "7. migrate"
docker compose run --rm -T stack is-db migrate
docker compose run --rm -T stack ns-db migrate
if [ "$binary" = tti-lw-stack ]; then
    docker compose run --rm -T stack dcs-db migrate
    docker compose run --rm -T stack as-db migrate
fi

phase start
step "8. start ${services[*]}"
docker compose up -d "${services[@]}"
container=$(docker compose ps -q stack)
# The image checks its health every minute (as TTS's does): Docker says healthy a minute after the start at best.
for _ in $(seq 1 360); do
    if [ "$(docker inspect --format '{{.State.Health.Status}}' "$container")" = healthy ]; then
        phase healthy
        step "done: $(docker compose exec -T stack "$binary" version | grep '^Version:'), backup in $backup"
        exit 0
    fi
    sleep 0.5
done
echo "runbook: the stack did not become healthy within 180 s" >&2
exit 1
