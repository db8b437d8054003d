#!/bin/sh
# Install one Commune Edge release into the root filesystem this runs in.
#
# Runs inside the target as root: through pi-gen's on_chroot for the Raspberry Pi image
# (stage-edge/00-edge/01-run.sh) and through chroot in image-build/smoke, so the CI-tested
# rootfs is installed exactly the way the image is. $1 is the bundle image-build/bundle
# made: VERSION, pins.txt, wheels/ (locked, hash-checked when fetched), systemd/, docs/.
set -eu

B=${1:-/tmp/edge-bundle}
VERSION=$(cat "$B/VERSION")
RELEASE=/opt/edge/releases/$VERSION

# The user and folders first: /opt/edge belongs to edge (see tmpfiles.d/edge.conf).
install -D -m 0644 "$B/systemd/sysusers.d/edge.conf" /usr/lib/sysusers.d/edge.conf
install -D -m 0644 "$B/systemd/tmpfiles.d/edge.conf" /usr/lib/tmpfiles.d/edge.conf
systemd-sysusers edge.conf
systemd-tmpfiles --create edge.conf

# The release: a venv of its own, from the bundle's wheels only (no index, no network).
rm -rf "$RELEASE"
python3 -m venv "$RELEASE"
"$RELEASE/bin/pip" install --quiet --no-index --no-cache-dir --disable-pip-version-check \
	--find-links "$B/wheels" -r "$B/pins.txt"
"$RELEASE/bin/pip" install --quiet --no-index --no-cache-dir --disable-pip-version-check \
	--no-deps "$B"/wheels/commune_edge-*.whl
install -D -m 0644 "$B/docs/operations.md" "$RELEASE/share/doc/edge/operations.md"
chown -R root:root "$RELEASE"
# Switch atomically: a relative link renamed over the old one, valid from any root.
ln -sfn "releases/$VERSION" /opt/edge/current.new
mv -T /opt/edge/current.new /opt/edge/current

# Units, the USB rule and the first-boot script.
for unit in "$B"/systemd/*.service "$B"/systemd/*.timer "$B"/systemd/*.path \
	"$B"/systemd/*.mount; do
	install -m 0644 "$unit" /usr/lib/systemd/system/
done
install -D -m 0644 "$B/systemd/80-edge-usb.rules" /usr/lib/udev/rules.d/80-edge-usb.rules
install -D -m 0755 "$B/firstboot/edge-firstboot" /usr/lib/edge/edge-firstboot

# Boot: the daemon, the clerk UI on tty1 instead of a login prompt (IT logs in on
# tty2), the update timer, the USB stick mount and its updater, first-boot provisioning.
systemctl enable edge.service edge-tui@tty1.service edge-update.timer edge-restart.path \
	edge-update-request.path edge-firstboot.service 'media-edge\x2dusb.mount' \
	edge-update-usb.service
systemctl disable getty@tty1.service 2>/dev/null || true
systemctl mask autovt@tty1.service

# Read-only friendly: the fake hardware clock saves under /var/lib, not /etc.
if [ -f /etc/default/fake-hwclock ]; then
	install -d -m 0755 /var/lib/fake-hwclock
	if grep -q '^#\?FILE=' /etc/default/fake-hwclock; then
		sed -i 's|^#\?FILE=.*|FILE=/var/lib/fake-hwclock/fake-hwclock.data|' /etc/default/fake-hwclock
	else
		echo 'FILE=/var/lib/fake-hwclock/fake-hwclock.data' >>/etc/default/fake-hwclock
	fi
fi
# The clerk's console shows Vietnamese: a console font that has its letters.
install -m 0644 "$B/console-setup" /etc/default/console-setup
# The journal persists (for regional IT after a crash) but stays small on an SD card.
install -d -m 0755 /etc/systemd/journald.conf.d
printf '[Journal]\nStorage=persistent\nSystemMaxUse=64M\n' >/etc/systemd/journald.conf.d/edge.conf

# --- Scan to folder for copiers (Samba) -------------------------------------------------
# Off by default: smbd, nmbd and the AD DC masked, no share, no account. Debian's
# smb.conf (homes, printers) is replaced by an include of the file 'edge share' writes
# under /var/lib (first boot may write there while /etc stays read-only); the copier's
# Unix account exists but has no Samba password until 'edge share enable'.
if [ -x /usr/sbin/smbd ]; then
	install -D -m 0644 "$B/systemd/sysusers.d/edge-share.conf" /usr/lib/sysusers.d/edge-share.conf
	systemd-sysusers edge-share.conf
	install -D -m 0644 "$B/systemd/smbd.service.d/edge.conf" \
		/usr/lib/systemd/system/smbd.service.d/edge.conf
	install -D -m 0644 "$B/systemd/edge-firstboot.service.d/share.conf" \
		/usr/lib/systemd/system/edge-firstboot.service.d/share.conf
	printf '%s\n' '# Commune Edge: the box'"'"'s Samba configuration is written by '"'"'edge share'"'"'.' \
		'include = /var/lib/samba/edge-share.conf' >/etc/samba/smb.conf
	/opt/edge/current/bin/edge share disable --no-service
	systemctl disable smbd.service nmbd.service samba-ad-dc.service 2>/dev/null || true
	systemctl mask smbd.service nmbd.service samba-ad-dc.service
fi

# --- Scanning on the box (SANE) ---------------------------------------------------------
# USB sheet-fed scanners through sane-backends' drivers, network scanners (and USB ones
# that speak IPP over USB, through ipp-usb) through sane-airscan. libsane1's udev rules
# hand a known scanner's device node to the scanner group (an ACL, hence acl): edge joins
# it. sane-backends' own escl driver is switched off, or every network scanner would be
# listed twice (once by escl, once by airscan). edge-scan-button.service answers the
# scanner's own button (see docs/operations.md, "Scanners").
if command -v scanimage >/dev/null; then
	install -D -m 0644 "$B/systemd/sysusers.d/edge-scanner.conf" \
		/usr/lib/sysusers.d/edge-scanner.conf
	systemd-sysusers edge-scanner.conf
	sed -i 's/^escl$/#escl/' /etc/sane.d/dll.conf
	systemctl enable edge-scan-button.service
fi

echo "installed Commune Edge $VERSION in $RELEASE"
