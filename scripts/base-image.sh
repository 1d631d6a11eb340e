#!/usr/bin/env bash
# A stand-in for the TFX release image where no image registry can be reached:
# Debian bookworm (debootstrap, minbase) with this machine's Python 3.10 copied
# in at the same prefix, imported into podman without pulling anything.
#
#   sudo bash scripts/base-image.sh              # -> localhost/model-garden-base:bookworm-py3.10
#   BASE_IMAGE_NAME=... PYTHON310=... FORCE=1 bash scripts/base-image.sh
#
# The Dockerfile then installs requirements.lock and the package on it exactly
# as on gcr.io/tfx-oss-public/tfx (make image BASE_IMAGE=... picks either).
# Skipped when the image exists (FORCE=1 rebuilds).  Takes ~1-2 min (debootstrap
# downloads ~40 MB of .debs from deb.debian.org).
set -euo pipefail

NAME="${BASE_IMAGE_NAME:-localhost/model-garden-base:bookworm-py3.10}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
log() { echo "base-image: $*"; }

if [ "${FORCE:-0}" != 1 ] && podman image exists "$NAME"; then
  log "$NAME exists (FORCE=1 rebuilds)"
  exit 0
fi

# The same interpreter `make setup` uses: the newest pyenv 3.10, else python3.10.
if [ -z "${PYTHON310:-}" ]; then
  PYTHON310="$(ls -d "$(pyenv root 2>/dev/null || echo /root/.pyenv)"/versions/3.10.*/bin/python3.10 2>/dev/null | tail -1 || true)"
  [ -n "$PYTHON310" ] || PYTHON310="$(command -v python3.10 || true)"
fi
[ -x "$PYTHON310" ] || { echo "base-image: no python3.10 found (set PYTHON310=)" >&2; exit 1; }
PREFIX="$("$PYTHON310" -c 'import sys; print(sys.base_prefix)')"
PYVER="$("$PYTHON310" -c 'import platform; print(platform.python_version())')"
log "Python $PYVER from $PREFIX"

work="$(mktemp -d /var/tmp/model-garden-rootfs.XXXXXX)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

# The shared libraries Python's own extension modules link (ssl, ctypes,
# sqlite3, bz2, lzma, readline, curses, uuid, expat, nis), and the CA bundle;
# tkinter's X11/Tk libraries are left out (no GUI in a pipeline step).
include="ca-certificates,libssl3,libffi8,libsqlite3-0,libbz2-1.0,liblzma5,zlib1g"
include+=",libreadline8,libncursesw6,libtinfo6,libuuid1,libexpat1,libnsl2,libtirpc3,libgdbm6"
# A C++ compiler, as the TFX image has: the lock's pyfarmhash (via
# tensorflow-data-validation) is an sdist only, and uv builds it in the image
# (without it: "Failed to build pyfarmhash==0.3.2 ... No such file or directory: 'g++'").
include+=",g++"
log "debootstrap bookworm -> $rootfs"
debootstrap --variant=minbase --include="$include" bookworm "$rootfs" "$MIRROR" \
  > "$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; exit 1; }

# Same prefix, so the interpreter's compiled-in paths and script shebangs hold.
# Not copied: site-packages' .pth files this machine's sandbox writes (they
# patch certifi at start-up for its proxy) and byte-code caches.
mkdir -p "$rootfs$PREFIX"
tar -C "$PREFIX" -c --exclude='__pycache__' --exclude='_sandboxing_*' . | tar -C "$rootfs$PREFIX" -x
# The prefix is under /root (pyenv) on these machines: make every directory
# above it traversable, or the image's non-root user (10001) cannot run python.
d="$PREFIX"
while [ "$d" != / ]; do chmod a+rx "$rootfs$d"; d="$(dirname "$d")"; done
for exe in python python3 python3.10; do
  ln -sf "$PREFIX/bin/python3.10" "$rootfs/usr/local/bin/$exe"
done
ln -sf "$PREFIX/bin/pip3.10" "$rootfs/usr/local/bin/pip"
ln -sf "$PREFIX/bin/pip3.10" "$rootfs/usr/local/bin/pip3"
echo "$NAME: Debian bookworm minbase (debootstrap) + Python $PYVER at $PREFIX" > "$rootfs/etc/model-garden-base"
chroot "$rootfs" /usr/local/bin/python3 -c 'import ssl, ctypes, sqlite3, bz2, lzma, uuid, zlib' \
  || { echo "base-image: the copied Python does not run in the rootfs" >&2; exit 1; }

rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
log "importing $NAME"
tar -C "$rootfs" -c . | podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  --message "debootstrap bookworm minbase + Python $PYVER" \
  - "$NAME" >/dev/null
log "built $NAME ($(podman image inspect --format '{{.Size}}' "$NAME") bytes)"
