#!/usr/bin/env bash
# Installs emotion-edge as a systemd service on a Jetson (or any Debian/Ubuntu machine with systemd).
#   sudo systemd/install.sh             install or upgrade; idempotent
#   sudo systemd/install.sh --uninstall stop and remove the service and /opt/emotion-edge
#                                        (keeps /etc/emotion-edge and the emotion-edge user)
# What it does: creates the system user emotion-edge (groups video, audio), a virtualenv in
# /opt/emotion-edge/.venv with --system-site-packages (so JetPack's TensorRT and pycuda are
# visible), installs this checkout into it, copies the example config to
# /etc/emotion-edge/config.toml unless one is there, installs the unit and enables it.
set -euo pipefail

APP=emotion-edge
PREFIX=/opt/$APP
CONFIG_DIR=/etc/$APP
UNIT_DIR=/etc/systemd/system
SRC="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "install.sh: $*" >&2; }

uninstall() {
  if systemctl list-unit-files "$APP.service" >/dev/null 2>&1; then
    systemctl disable --now "$APP.service" 2>/dev/null || true
  fi
  rm -f "$UNIT_DIR/$APP.service"
  systemctl daemon-reload
  rm -rf "$PREFIX"
  say "removed the service and $PREFIX; kept $CONFIG_DIR and the user $APP (remove them with: rm -r $CONFIG_DIR; userdel $APP)"
}

install() {
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$PYTHON is older than 3.10"
  "$PYTHON" -m venv --help >/dev/null 2>&1 || die "$PYTHON has no venv module: apt-get install python3-venv"

  if ! id -u "$APP" >/dev/null 2>&1; then
    useradd --system --home-dir "/var/lib/$APP" --no-create-home --shell /usr/sbin/nologin \
      --user-group --comment "emotion-edge daemon" "$APP"
    say "created the system user $APP"
  fi
  for group in video audio; do
    getent group "$group" >/dev/null && usermod --append --groups "$group" "$APP"
  done

  mkdir -p "$PREFIX"
  [[ -x "$PREFIX/.venv/bin/python" ]] || "$PYTHON" -m venv --system-site-packages "$PREFIX/.venv"
  "$PREFIX/.venv/bin/python" -m pip install --quiet --upgrade pip
  "$PREFIX/.venv/bin/python" -m pip install --quiet --upgrade "$SRC"
  say "installed $SRC into $PREFIX/.venv"

  install -d -m 0755 "$CONFIG_DIR"
  if [[ ! -e "$CONFIG_DIR/config.toml" ]]; then
    install -m 0640 -g "$APP" "$SRC/systemd/config.example.toml" "$CONFIG_DIR/config.toml"
    say "wrote $CONFIG_DIR/config.toml from the example: edit it, then: systemctl restart $APP"
  else
    say "kept the existing $CONFIG_DIR/config.toml"
  fi
  "$PREFIX/.venv/bin/emotion-edge" check-config "$CONFIG_DIR/config.toml" >/dev/null \
    || die "$CONFIG_DIR/config.toml does not load (see above); fix it and run install.sh again"

  install -m 0644 "$SRC/systemd/$APP.service" "$UNIT_DIR/$APP.service"
  systemctl daemon-reload
  systemctl enable "$APP.service" >/dev/null
  systemctl restart "$APP.service"
  say "started $APP.service; follow it with: journalctl -u $APP -f"
}

case "${1:-}" in
  "" | --uninstall) ;;
  -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown option $1 (use --uninstall or --help)" ;;
esac
[[ $(id -u) -eq 0 ]] || die "run as root: sudo $0 ${1:-}"
command -v systemctl >/dev/null || die "systemctl not found: this script needs systemd"
if [[ "${1:-}" == --uninstall ]]; then uninstall; else install; fi
