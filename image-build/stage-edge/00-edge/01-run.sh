#!/bin/bash -e
# pi-gen substage: install Commune Edge into the image from the bundle made beforehand by
#   image-build/bundle image-build/stage-edge/00-edge/files/bundle arm64
# The install itself is files/install-edge.sh, run inside the image: the same script
# image-build/smoke runs in a Debian rootfs, so what CI checks is what the image gets.
BUNDLE=files/bundle
if [ ! -f "${BUNDLE}/VERSION" ]; then
	echo "stage-edge: no bundle in $(pwd)/${BUNDLE}: run image-build/bundle first" >&2
	exit 1
fi
rm -rf "${ROOTFS_DIR}/tmp/edge-bundle"
cp -r "${BUNDLE}" "${ROOTFS_DIR}/tmp/edge-bundle"
on_chroot <<'CHROOT'
sh /tmp/edge-bundle/install-edge.sh /tmp/edge-bundle
CHROOT
rm -rf "${ROOTFS_DIR}/tmp/edge-bundle"
