#!/usr/bin/env bash
# Builds the images the compose file uses, without any container registry:
#   memdb-base:bookworm  Debian bookworm minbase + python3 + venv, made by mmdebstrap from the machine's Debian
#                        mirror and `docker import`ed (built only if missing)
#   memdb:latest         deploy/Dockerfile on that base; rebuilt only when its inputs changed (the hash of the
#                        sources, the Dockerfile and the base image is kept in the image label memdb.source-hash)
# Usage: deploy/build-image.sh [--force]    env: PYTHON (default .venv/bin/python), MEMDB_IMAGE, MEMDB_BASE_IMAGE,
#                                            MEMDB_DEBIAN_MIRROR
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE=${MEMDB_BASE_IMAGE:-memdb-base:bookworm}
IMAGE=${MEMDB_IMAGE:-memdb:latest}
PY=${PYTHON:-$ROOT/.venv/bin/python}
CTX=$ROOT/build/docker            # build/ is ignored by git
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1
export DOCKER_BUILDKIT=0          # the classic builder: no buildx plugin needed, and --network none for RUN
t0=$SECONDS

debian_mirror() {
  if [[ -n "${MEMDB_DEBIAN_MIRROR:-}" ]]; then echo "$MEMDB_DEBIAN_MIRROR"; return; fi
  local uri=""
  # deb822 (/etc/apt/sources.list.d/*.sources): the URIs of the stanza whose Suites has plain "bookworm"
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    uri=$(awk 'BEGIN{RS=""; FS="\n"} { u=""; s=0
            for (i=1;i<=NF;i++) { if ($i ~ /^URIs:/) { split($i,a," "); u=a[2] }
                                  if ($i ~ /^Suites:/ && $i ~ /[ \t]bookworm([ \t]|$)/) s=1 }
            if (s && u != "") { print u; exit } }' "$f")
    [[ -n "$uri" ]] && break
  done
  if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
    uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# -- 1. the base image --------------------------------------------------------------------------------------------
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  command -v mmdebstrap >/dev/null || { echo "mmdebstrap is missing (apt-get install mmdebstrap)" >&2; exit 1; }
  mirror=$(debian_mirror)
  echo "building $BASE with mmdebstrap from $mirror ..."
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates bookworm - "$mirror" \
    | docker import --change 'CMD ["python3"]' - "$BASE" >/dev/null
  echo "built $BASE in $((SECONDS - t0)) s"
fi

# -- 2. the generated gRPC code must be current before it goes into the wheel -----------------------------------
if "$PY" -c "import grpc_tools" 2>/dev/null; then
  (cd "$ROOT" && "$PY" -m txlog.tools.genproto >/dev/null)
fi
for f in txlog/generated/txlog_pb2.py memdb/generated/entries_pb2.py; do
  [[ -f "$ROOT/$f" ]] || { echo "$f is missing: run 'make proto' first" >&2; exit 1; }
done

# -- 3. stage the sources and decide whether the image is current ------------------------------------------------
rm -rf "$CTX/src"
mkdir -p "$CTX/src" "$CTX/wheels"
(cd "$ROOT" && tar --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' -cf - pyproject.toml memdb txlog) \
  | tar -xf - -C "$CTX/src"
cp "$ROOT/deploy/Dockerfile" "$ROOT/deploy/healthcheck.py" "$CTX/"
base_id=$(docker image inspect -f '{{.Id}}' "$BASE")
hash=$( (cd "$CTX" && find src Dockerfile healthcheck.py -type f | LC_ALL=C sort | xargs sha256sum; echo "$base_id") \
        | sha256sum | cut -c1-16)
current=$(docker image inspect -f '{{ index .Config.Labels "memdb.source-hash" }}' "$IMAGE" 2>/dev/null || true)
if [[ $FORCE == 0 && "$current" == "$hash" ]]; then
  echo "$IMAGE is up to date (source hash $hash)"
  exit 0
fi

# -- 4. wheels on the host (same CPython minor as the image: bookworm's python3 is 3.11) -------------------------
want=$(docker run --rm --network none "$BASE" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
have=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[[ "$want" == "$have" ]] || { echo "host Python is $have but $BASE has $want: wheels would not match" >&2; exit 1; }
# The dependencies' wheels are fetched again only when pyproject.toml's dependency list changes.
mkdir -p "$CTX/wheels/deps" "$CTX/wheels/memdb"
rm -f "$CTX"/wheels/*.whl "$CTX"/wheels/memdb/*.whl      # (*.whl: the layout of an earlier version of this script)
"$PY" -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
  "$CTX/src/pyproject.toml" > "$CTX/requirements.txt"
if ! cmp -s "$CTX/requirements.txt" "$CTX/wheels/deps/requirements.txt"; then
  rm -f "$CTX"/wheels/deps/*
  "$PY" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$CTX/wheels/deps" -r "$CTX/requirements.txt" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  cp "$CTX/requirements.txt" "$CTX/wheels/deps/requirements.txt"
fi
# setuptools >= 70.1 in the venv builds the wheel by itself; without it pip would first fetch one (~30 s here)
isolation=()
"$PY" -c 'import setuptools, sys; sys.exit(tuple(map(int, setuptools.__version__.split(".")[:2])) < (70, 1))' \
  2>/dev/null && isolation=(--no-build-isolation)
"$PY" -m pip wheel --quiet --disable-pip-version-check --no-deps "${isolation[@]}" --wheel-dir "$CTX/wheels/memdb" "$CTX/src" \
  2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
"$PY" - "$CTX/wheels/memdb" <<'PY'
import glob, sys, zipfile
[wheel] = glob.glob(f"{sys.argv[1]}/memdb-*.whl")
names = set(zipfile.ZipFile(wheel).namelist())
missing = {"txlog/generated/txlog_pb2.py", "txlog/generated/txlog_pb2_grpc.py",
           "memdb/generated/entries_pb2.py"} - names
if missing:
    sys.exit(f"{wheel} lacks the generated code: {sorted(missing)}")
PY

# -- 5. the image -----------------------------------------------------------------------------------------------
quiet_build() {
  docker build --quiet --network none --build-arg "BASE=$BASE" "$@" "$CTX" \
    >/dev/null 2> >(grep -v -e "legacy builder is deprecated" -e "BuildKit is currently disabled" \
                            -e "environment-variable\.$" -e "^[[:space:]]*$" >&2)
}
started=$(date +%s)
quiet_build --label "memdb.source-hash=$hash" -t "$IMAGE"
# Drop the previous memdb image and the build stages of earlier builds (all untagged now). This build's stage
# stays: it holds the cached dependency layer that the next build reuses. The base image stays.
docker image prune --force --filter "label=memdb.build-stage" --filter "until=$started" >/dev/null 2>&1 || true
docker image prune --force --filter "label=memdb.source-hash" >/dev/null 2>&1 || true
docker image rm memdb:build-cache >/dev/null 2>&1 || true    # (tagged by an earlier version of this script)
echo "built $IMAGE (source hash $hash) in $((SECONDS - t0)) s"
