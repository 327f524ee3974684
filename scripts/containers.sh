# Sourced by the image scripts: podman and buildah from Debian's packages (installed when missing),
# and the settings they need on these machines: the runc runtime (crun refuses their hybrid
# cgroups) and no default ulimits (the sandbox refuses raising rlimits), in a containers.conf that
# CONTAINERS_CONF points at. Podman runs as root here, with its storage in /var/lib/containers.
if ! command -v podman >/dev/null || ! command -v buildah >/dev/null || ! command -v runc >/dev/null; then
  sudo=$([[ $EUID -eq 0 ]] || echo sudo)
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    podman buildah runc >/dev/null
fi
CONTAINERS_CONF="$PWD/target/containers/containers.conf"
export CONTAINERS_CONF
mkdir -p "$(dirname "$CONTAINERS_CONF")"
cat >"$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
CONF
