#!/usr/bin/env bash
# Assembles the image's runtime base from Debian's packages, as distroless's cc image is made:
# libc6, libgcc-s1 and libstdc++6 (which libonnxruntime.so needs), ca-certificates, tzdata and
# netbase, unpacked without their maintainer scripts, plus a nonroot user (65532) and a /tmp. No
# shell, no package manager. The packages come from this machine's Debian release, so the base
# carries the glibc a binary built here links against.
# usage: build-base-image.sh [IMAGE]   (default: localhost/ocrgate-base:bookworm)
# Needs apt-get, dpkg-deb and podman (see scripts/containers.sh for podman's settings here).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/containers.sh

image="${1:-localhost/ocrgate-base:bookworm}"
packages=(libc6 libgcc-s1 libstdc++6 ca-certificates tzdata netbase)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"
download() { (cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "${packages[@]}"); }
# A machine that has never fetched its package lists fetches them first.
download 2>/dev/null || { apt-get update -qq && download; }
for deb in "$work"/*.deb; do
  dpkg-deb --extract "$deb" "$root"
done

# What the packages' maintainer scripts would have made: the CA bundle and the local time zone.
mkdir -p "$root/etc/ssl/certs"
cat "$root"/usr/share/ca-certificates/mozilla/*.crt >"$root/etc/ssl/certs/ca-certificates.crt"
ln -sf /usr/share/zoneinfo/Etc/UTC "$root/etc/localtime"
echo "Etc/UTC" >"$root/etc/timezone"

# The users distroless has: root, nobody and nonroot, none with a shell.
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
mkdir -p "$root/root" "$root/home/nonroot" "$root/tmp"
rm -rf "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/lintian" "$root/usr/share/info"
chown -R 0:0 "$root"
chown -R 65532:65532 "$root/home/nonroot"
chmod 0700 "$root/root"
chmod 1777 "$root/tmp"

tar --numeric-owner -C "$root" -c . \
  | podman import --quiet \
    --change 'USER 65532:65532' --change 'WORKDIR /home/nonroot' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    - "$image" >/dev/null
echo "runtime base $image: $(podman image inspect --format '{{.Size}}' "$image") bytes from ${packages[*]}"
