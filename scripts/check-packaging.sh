#!/usr/bin/env bash
# Checks the packaging that can be checked on a build machine (CI runs it):
#   - builds the duet-signal .deb with cargo-deb (installed with `cargo install` if missing)
#     and inspects its files, control data, conffiles and maintainer scripts;
#   - runs the packaged binary (--version, `signal token`);
#   - `systemd-analyze verify` on the unit (skipped with a message where it cannot run);
#   - `desktop-file-validate` on packaging/duet.desktop, and the icon's size;
#   - the Containerfile's essentials (it is not built here: no registry for base images).
# Installs the Debian packages it needs (dpkg-dev bits, desktop-file-utils, systemd) when
# missing, with sudo when not root. Reuses target/, so a warm run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*" >&2; fail=1; }
skip() { echo "skip: $*"; }

sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd=sudo
apt_updated=0
need_pkg() { # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  [ "${DUET_SKIP_APT:-0}" = "1" ] && return 1
  command -v apt-get >/dev/null 2>&1 || return 1
  if [ "$apt_updated" = 0 ]; then $sudo_cmd apt-get update -qq >/dev/null && apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "$2" >/dev/null
  command -v "$1" >/dev/null 2>&1
}

# --- the signal .deb --------------------------------------------------------------------
need_pkg dpkg-deb dpkg || { bad "dpkg-deb not available"; exit 1; }
if ! cargo deb --version >/dev/null 2>&1; then
  echo "installing cargo-deb (once)"
  cargo install cargo-deb --locked --quiet
fi
# One release build of both packaged binaries; cargo-deb then only packs them.
# DUET_CARGO_TIMINGS=1 also writes its timings (target/cargo-timings/).
cargo build --release --locked ${DUET_CARGO_TIMINGS:+--timings} -p signal --bin signal -p duet --bin duet
cargo deb -p signal --no-build --quiet >/dev/null
deb=$(ls -t "${CARGO_TARGET_DIR:-target}"/debian/duet-signal_*.deb | head -n1)
echo "built $deb ($(du -h "$deb" | cut -f1))"

contents=$(dpkg-deb -c "$deb" | awk '{print $1, $6}')
expect_file() { # mode-prefix path
  if grep -qE "^$1[^ ]* \./$2\$" <<<"$contents"; then ok "deb has /$2 ($1)"; else bad "deb lacks /$2 with mode $1"; fi
}
expect_file "-rwxr-xr-x" "usr/bin/signal"
expect_file "-rw-r--r--" "lib/systemd/system/duet-signal.service"
expect_file "-rw-------" "etc/duet/signal.env"
expect_file "-rw-r--r--" "usr/share/doc/duet-signal/deploy.md"
expect_file "-rw-r--r--" "usr/share/doc/duet-signal/examples/low-ports.conf"
expect_file "-rw-r--r--" "usr/share/doc/duet-signal/copyright"

info=$(dpkg-deb -I "$deb")
grep -q "^ Package: duet-signal$" <<<"$info" && ok "control: Package duet-signal" || bad "control: wrong Package"
grep -qE "^ Depends: .*adduser" <<<"$info" && ok "control: Depends has adduser" || bad "control: Depends lacks adduser"
grep -qE "^ Depends: .*libc6" <<<"$info" && ok "control: Depends has libc6 (\$auto)" || bad "control: Depends lacks libc6"
grep -q "^ Section: net$" <<<"$info" && ok "control: Section net" || bad "control: wrong Section"

ctl=$(mktemp -d)
root=$(mktemp -d)
trap 'rm -rf "$ctl" "$root"' EXIT
dpkg-deb -e "$deb" "$ctl"
dpkg-deb -x "$deb" "$root"
grep -qx "/etc/duet/signal.env" "$ctl/conffiles" && ok "conffiles: /etc/duet/signal.env" || bad "conffiles lacks /etc/duet/signal.env"
for script in postinst prerm postrm; do
  if [ -x "$ctl/$script" ] && sh -n "$ctl/$script"; then ok "maintainer script $script (executable, parses)"; else bad "maintainer script $script missing or broken"; fi
done
grep -q "adduser --system" "$ctl/postinst" && ok "postinst creates the system user" || bad "postinst does not create the user"

# The packaged binary runs, and its token subcommand matches the HMAC documented in protocol.md.
version=$("$root/usr/bin/signal" --version)
deb_version=$(dpkg-deb -f "$deb" Version)
[ "$version" = "signal ${deb_version%-*}" ] \
  && ok "binary: $version (package $deb_version)" || bad "binary --version printed '$version' for package $deb_version"
token=$("$root/usr/bin/signal" token --secret Jefe "what do ya want for nothing?")
[ "$token" = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" ] \
  && ok "binary: signal token is HMAC-SHA256 (RFC 4231 case 2)" || bad "signal token printed $token"

# --- the duet desktop app .deb -----------------------------------------------------------
cargo deb -p duet --no-build --quiet >/dev/null
app_deb=$(ls -t "${CARGO_TARGET_DIR:-target}"/debian/duet_*.deb | head -n1)
echo "built $app_deb ($(du -h "$app_deb" | cut -f1))"
contents=$(dpkg-deb -c "$app_deb" | awk '{print $1, $6}')
expect_file "-rwxr-xr-x" "usr/bin/duet"
expect_file "-rw-r--r--" "usr/share/applications/duet.desktop"
expect_file "-rw-r--r--" "usr/share/icons/hicolor/scalable/apps/duet.svg"
expect_file "-rw-r--r--" "usr/share/icons/hicolor/256x256/apps/duet.png"
app_info=$(dpkg-deb -I "$app_deb")
grep -q "^ Package: duet$" <<<"$app_info" && ok "control: Package duet" || bad "control: wrong Package for the app"
grep -qE "^ Depends: .*libc6" <<<"$app_info" && ok "control: the app's Depends has libc6 (\$auto)" || bad "control: the app's Depends lacks libc6"
app_root=$(mktemp -d)
dpkg-deb -x "$app_deb" "$app_root"
"$app_root/usr/bin/duet" --version >/dev/null && ok "binary: duet --version runs" || bad "binary: duet --version failed"
rm -rf "$app_root"

# --- the systemd unit ----------------------------------------------------------------------
if need_pkg systemd-analyze systemd; then
  # verify needs ExecStart to exist: point it at the binary extracted from the .deb.
  unit_dir=$(mktemp -d)
  sed "s|^ExecStart=/usr/bin/signal|ExecStart=$root/usr/bin/signal|" packaging/signal.service >"$unit_dir/duet-signal.service"
  if out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$unit_dir/duet-signal.service" 2>&1); then
    # Messages about other units (the host's) are not ours; ours must be clean.
    if grep -q "duet-signal.service" <<<"$out"; then bad "systemd-analyze verify: $out"; else ok "systemd-analyze verify duet-signal.service"; fi
  elif grep -qiE "Failed to (connect|initialize|create|set up|determine)|No such file or directory.*(/run|/proc|/sys)|System has not been booted|Operation not permitted" <<<"$out" \
      && ! grep -q "duet-signal.service:" <<<"$out"; then
    skip "systemd-analyze verify cannot run here: $(head -n1 <<<"$out")"
  else
    bad "systemd-analyze verify: $out"
  fi
  if exposure=$(systemd-analyze security --offline=true "$unit_dir/duet-signal.service" 2>/dev/null | tail -n1); then
    echo "info: systemd-analyze security: ${exposure#→ }"
  fi
  rm -rf "$unit_dir"
else
  skip "systemd-analyze not available"
fi
for key in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes "CapabilityBoundingSet=" \
    LimitNOFILE=65536 Restart=on-failure "ExecReload=/bin/kill -HUP \$MAINPID" User=duet-signal; do
  grep -qxF "$key" packaging/signal.service && ok "unit: $key" || bad "unit lacks $key"
done

# --- the desktop entry and icon ------------------------------------------------------------
if need_pkg desktop-file-validate desktop-file-utils; then
  if out=$(desktop-file-validate packaging/duet.desktop 2>&1) && [ -z "$out" ]; then
    ok "desktop-file-validate packaging/duet.desktop"
  else
    bad "desktop-file-validate: $out"
  fi
else
  skip "desktop-file-validate not available"
fi
png_size=$(od -An -tu1 -j16 -N8 assets/icons/duet-256.png | awk '{print $3*256+$4 "x" $7*256+$8}')
[ "$(head -c8 assets/icons/duet-256.png | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] && [ "$png_size" = "256x256" ] \
  && ok "icon: duet-256.png is a 256x256 PNG" || bad "icon: duet-256.png is not a 256x256 PNG ($png_size)"
grep -q "<svg" assets/icons/duet.svg && ok "icon: duet.svg" || bad "icon: duet.svg missing"

# --- the Containerfile ----------------------------------------------------------------------
cf=packaging/Containerfile
grep -qE "^FROM .* AS build$" "$cf" && ok "Containerfile: build stage" || bad "Containerfile: no build stage"
[ "$(grep -c '^FROM ' "$cf")" -ge 2 ] && ok "Containerfile: multi-stage" || bad "Containerfile: not multi-stage"
grep -qE "^USER (nonroot|[1-9][0-9]*)" "$cf" && ok "Containerfile: non-root user" || bad "Containerfile: runs as root"
grep -qE "^EXPOSE 8080( |$)" "$cf" && ok "Containerfile: EXPOSE 8080" || bad "Containerfile: no EXPOSE 8080"
grep -qE "^EXPOSE .*3478/udp.*3478/tcp" "$cf" && ok "Containerfile: EXPOSE 3478/udp and 3478/tcp (STUN/TURN)" || bad "Containerfile: STUN/TURN ports not exposed"
grep -q "^target/" .dockerignore && ok ".dockerignore keeps target/ out of the build context" || bad ".dockerignore lacks target/"

if [ "$fail" -ne 0 ]; then
  echo "check-packaging: FAILED" >&2
  exit 1
fi
echo "check-packaging: all checks passed"
