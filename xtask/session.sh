#!/usr/bin/env bash
# Runs a command inside a private, unlocked Secret Service keyring (gnome-keyring) on the current
# D-Bus session bus. `cargo xtask` starts it under `dbus-run-session` (and Xvfb when there is no
# display), so tests and the headless demo never touch the developer's own keyring.
set -euo pipefail
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
chmod 700 "$XDG_RUNTIME_DIR"
keyring_home=$(mktemp -d)
export XDG_DATA_HOME="$keyring_home"
# a random password for this throw-away keyring; it only lives in this process tree
password=$(head -c 24 /dev/urandom | base64)
eval "$(printf '%s' "$password" | gnome-keyring-daemon --unlock --components=secrets)"
export GNOME_KEYRING_CONTROL
unset password
export UNIONPASS_SESSION=1
set +e
"$@"
rc=$?
kill "${GNOME_KEYRING_PID:-}" 2>/dev/null
rm -rf "$keyring_home"
exit $rc
