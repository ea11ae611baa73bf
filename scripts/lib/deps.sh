# Shared by scripts/demo and scripts/test: install missing Debian packages with apt-get.
# Nothing is downloaded from anywhere but Debian's package archive.

# need_packages pkg... : installs the packages that are not installed yet.
need_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "corio: installing Debian packages: ${missing[*]}" >&2
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# has_package pkg : true if the package can be installed from the configured archive.
has_package() {
  apt-cache show "$1" >/dev/null 2>&1
}

# Build tools every build needs.
BASE_PACKAGES=(cmake ninja-build g++ make pkg-config libssl-dev liburing-dev) # OpenSSL (TLS), liburing (io_uring backend)
