#!/bin/sh
# Links the default model converted at build time into the data home (a volume), then runs the
# command. Idempotent: an existing models/smollm2-135m-instruct in the volume is left alone.
set -eu
home="${SUPPORTLOOP_HOME:-/data}"
mkdir -p "$home/models"
if [ -d /opt/supportloop/models/smollm2-135m-instruct ] && [ ! -e "$home/models/smollm2-135m-instruct" ]; then
  ln -s /opt/supportloop/models/smollm2-135m-instruct "$home/models/smollm2-135m-instruct"
fi
exec "$@"
