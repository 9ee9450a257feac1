#!/bin/sh
# PID 1 of the hwsq test VMs (busybox sh, packed into the initramfs by initramfs.mjs).
#
# Loads the virtio + 9p modules, mounts the host root read-only at /mnt (tag "hostroot") and the
# per-run exchange directory read-write at /io (tag "hwsqio"), then runs /io/run.sh (written by
# vm.mjs) chrooted into the host root with stdout/stderr redirected into /io, writes the exit
# status to /io/exit-code and powers off. Every message of this script starts with "hwsq-vm:" so
# it can be told apart from kernel messages on the serial console.
export PATH=/bin:/sbin

say() { echo "hwsq-vm: $*"; }
fatal() {
  say "FATAL: $*"
  poweroff -f
  sleep 10
}

mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# Loopback for tests that serve and request over 127.0.0.1 (the guest has no other network).
ip link set lo up || say "cannot bring up lo"

# Modules in dependency order (written at build time); those built into the kernel are absent.
for m in $(cat /lib/modules/order); do
  insmod "/lib/modules/$m.ko" || say "insmod $m failed"
done

# 9p over virtio: msize is clamped by the kernel to what the transport supports (about 500 KiB on
# 6.x); cache=loose on the read-only root lets the guest cache pages and metadata (node's startup
# reads hundreds of files); the exchange share is uncached so the results reach the host.
p9=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$p9,ro,cache=loose" hostroot /mnt || fatal "cannot mount the host root (9p tag hostroot)"
mount -t 9p -o "$p9" hwsqio /io || fatal "cannot mount the exchange directory (9p tag hwsqio)"

for d in proc sys dev tmp; do
  [ -d "/mnt/$d" ] || fatal "host root has no /$d to mount over"
done
mount -t proc proc /mnt/proc || fatal "mount /mnt/proc"
mount -t sysfs sysfs /mnt/sys || fatal "mount /mnt/sys"
mount -t devtmpfs devtmpfs /mnt/dev || fatal "mount /mnt/dev"
# The guest gets its own writable /tmp, but a working directory under the host's /tmp (a CI
# clone, say) must stay visible: keep a view of the host's /tmp and bind the listed directories
# (/io/host-tmp-dirs, written by vm.mjs) back into the guest's /tmp.
mkdir -p /hosttmp && mount -o bind /mnt/tmp /hosttmp || fatal "bind the host /tmp"
mount -t tmpfs -o mode=1777 tmpfs /mnt/tmp || fatal "mount /mnt/tmp"
if [ -f /io/host-tmp-dirs ]; then
  while read -r rel; do
    mkdir -p "/mnt/tmp/$rel" && mount -o bind "/hosttmp/$rel" "/mnt/tmp/$rel" || fatal "bind /tmp/$rel"
  done </io/host-tmp-dirs
fi
mkdir -p /mnt/dev/shm /mnt/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /mnt/dev/shm
mount -t devpts devpts /mnt/dev/pts

[ -f /io/run.sh ] || fatal "no /io/run.sh"
# The harness's test of a boot that never ends (stallFirstBoot): only this boot hangs.
if [ -e /io/stall-boot ]; then
  rm -f /io/stall-boot
  say "stalling before the command (stallFirstBoot)"
  while :; do sleep 3600; done
fi
cp /io/run.sh /mnt/tmp/.hwsq-vm-run.sh || fatal "cannot copy run.sh"

say "running"
if [ -e /io/separate-stderr ]; then
  chroot /mnt /usr/bin/env -i /bin/sh /tmp/.hwsq-vm-run.sh </dev/null >/io/stdout 2>/io/stderr
else
  chroot /mnt /usr/bin/env -i /bin/sh /tmp/.hwsq-vm-run.sh </dev/null >/io/stdout 2>&1
fi
rc=$?
echo "$rc" >/io/exit-code.part && mv /io/exit-code.part /io/exit-code
sync
umount /io
say "finished, exit code $rc"
poweroff -f
sleep 10
