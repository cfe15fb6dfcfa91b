#!/bin/sh
# Boots a kernel under qemu (TCG) and runs one command of this host inside it.
#   tests/kernels/boot.sh KERNEL_DIR OUTDIR -- COMMAND [ARG...]
# KERNEL_DIR: a kernel extracted by tests/kernels/fetch.sh (its root/ holds
# boot/vmlinuz-R or usr/lib/modules/R/vmlinuz, and lib/modules/R with modules.dep).
# The guest sees this machine's root file system read-only (virtiofs, else 9p)
# under a tmpfs overlay, so the host's freshly built binaries and libraries run
# unchanged; writes go to the overlay and are lost, except in OUTDIR, which is
# shared writable at the same path. COMMAND runs as root in the host's current
# directory with the caller's exported environment, its stdout and stderr
# (merged) on this script's stdout; the guest's console goes to OUTDIR/console.log.
# Exit status: COMMAND's; 124 when the guest timed out, 125 when it died
# (panic, oops) without reporting one, 2 for a usage or setup error.
# Environment: PROFLEET_BOOT_TIMEOUT (seconds, default 600),
# PROFLEET_BOOT_MEM (default 2G), PROFLEET_BOOT_FS (virtiofs or 9p; default
# virtiofs when a virtiofsd is installed), PROFLEET_BOOT_APPEND (more kernel
# command line).
set -eu

TIMEOUT=${PROFLEET_BOOT_TIMEOUT:-600}
MEM=${PROFLEET_BOOT_MEM:-2G}
# modules the init loads when they are not built in, with what modules.dep adds
MODULES="virtio_pci virtio_rng fuse virtiofs 9pnet_virtio 9p overlay"

die() { echo "boot.sh: $*" >&2; exit 2; }
[ $# -ge 4 ] && [ "$3" = -- ] || die "usage: boot.sh KERNEL_DIR OUTDIR -- COMMAND [ARG...]"
KDIR=$1
mkdir -p "$2"
OUTDIR=$(cd "$2" && pwd -P)
shift 3
# it goes on the kernel command line, which splits at blanks
case $OUTDIR in *[[:space:]]*) die "OUTDIR must not contain blanks: $OUTDIR" ;; esac

# ---- the kernel ---------------------------------------------------------------
ROOT=$KDIR/root
[ -d "$ROOT" ] || ROOT=$KDIR
MODDIR=""
for d in "$ROOT"/lib/modules/* "$ROOT"/usr/lib/modules/*; do
	[ -f "$d/modules.dep" ] && MODDIR=$d && break
done
[ -n "$MODDIR" ] || die "no lib/modules/*/modules.dep under $ROOT"
REL=${MODDIR##*/}
VMLINUZ=$ROOT/boot/vmlinuz-$REL
[ -f "$VMLINUZ" ] || VMLINUZ=$MODDIR/vmlinuz
[ -f "$VMLINUZ" ] || die "no vmlinuz for $REL under $ROOT"

QEMU=$(command -v qemu-system-x86_64) || die "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || die "no $BUSYBOX (apt-get install busybox-static)"
readelf -l "$BUSYBOX" 2>/dev/null | grep -q 'Requesting program interpreter' &&
	die "$BUSYBOX is dynamically linked (apt-get install busybox-static)"

# ---- the file system share ------------------------------------------------------
VIRTIOFSD=""
for v in /usr/lib/qemu/virtiofsd /usr/libexec/virtiofsd; do
	[ -x "$v" ] && VIRTIOFSD=$v && break
done
FS=${PROFLEET_BOOT_FS:-$([ -n "$VIRTIOFSD" ] && echo virtiofs || echo 9p)}
[ "$FS" = 9p ] || [ -n "$VIRTIOFSD" ] || die "PROFLEET_BOOT_FS=virtiofs but no virtiofsd"

T=$(mktemp -d /tmp/profleet-boot.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# virtiofsd SOCKET DIR CACHE: one daemon per shared directory
virtiofsd() {
	if "$VIRTIOFSD" --help 2>&1 | grep -q -- --shared-dir; then # the Rust one (trixie)
		c=$3
		[ "$c" = none ] && c=never
		"$VIRTIOFSD" --socket-path="$1" --shared-dir="$2" --cache="$c" --sandbox=none \
			--log-level=error >>"$T/virtiofsd.log" 2>&1 &
	else # qemu's own (bookworm): it cannot raise RLIMIT_NOFILE in a container
		"$VIRTIOFSD" --socket-path="$1" -o source="$2" -o cache="$3" -o sandbox=chroot \
			--rlimit-nofile=0 -o log_level=err >>"$T/virtiofsd.log" 2>&1 &
	fi
	PIDS="$PIDS $!"
	i=0
	until [ -S "$1" ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || { cat "$T/virtiofsd.log" >&2; die "virtiofsd did not start"; }
		sleep 0.1
	done
}

# sets SHARES, qemu's options for the two shares (starting the daemons first)
shares() {
	if [ "$FS" = virtiofs ]; then
		virtiofsd "$T/root.sock" / always
		virtiofsd "$T/out.sock" "$OUTDIR" none
		SHARES="-object memory-backend-memfd,id=mem,size=$MEM,share=on -numa node,memdev=mem
			-chardev socket,id=fs0,path=$T/root.sock -device vhost-user-fs-pci,chardev=fs0,tag=hostroot
			-chardev socket,id=fs1,path=$T/out.sock -device vhost-user-fs-pci,chardev=fs1,tag=out"
	else
		SHARES="-fsdev local,id=fs0,path=/,security_model=none,readonly=on,multidevs=remap
			-device virtio-9p-pci,fsdev=fs0,mount_tag=hostroot
			-fsdev local,id=fs1,path=$OUTDIR,security_model=none
			-device virtio-9p-pci,fsdev=fs1,mount_tag=out"
	fi
}

# ---- the initramfs: busybox, the modules, /init; cached beside the kernel -------------
# The guest's PID 1. It never switch_roots: it stays in the initramfs, chroots
# into the overlay for the command, then reports the status and powers off.
INIT='#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
say() { echo "profleet-init: $*"; }
halt() { sync; poweroff -f; echo o >/proc/sysrq-trigger; sleep 10; }
die() { say "$*"; halt; }
for m in $(cat /modules); do insmod "/lib/modules/$m" || say "insmod $m failed"; done
arg() { tr " " "\n" </proc/cmdline | sed -n "s/^$1=//p"; }
fs=$(arg profleet.fs) ctl=$(arg profleet.ctl) out=$(arg profleet.out)
share() { # tag, mount point, ro|rw
	if [ "$fs" = virtiofs ]; then
		mount -t virtiofs -o "$3" "$1" "$2"
	else
		mount -t 9p -o "trans=virtio,version=9p2000.L,msize=262144,$3" "$1" "$2"
	fi
}
mkdir -p /lower /rw /newroot
share hostroot /lower ro || die "cannot mount the host root over $fs"
mount -t tmpfs -o mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot ||
	die "cannot mount the overlay"
R=/newroot
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t bpf bpf $R/sys/fs/bpf
mount -t debugfs debugfs $R/sys/kernel/debug
mount -t tracefs tracefs $R/sys/kernel/tracing
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup
mount -t tmpfs -o mode=0755 tmpfs $R/run
mkdir -p $R/run/profleet "$R$out"
cp "/lower$ctl/run.sh" $R/run/profleet/run.sh || die "no $ctl/run.sh in the host root"
share out "$R$out" rw || die "cannot mount the output directory over $fs"
stty -F /dev/ttyS1 raw -echo
say "ready after $(cut -d " " -f 1 /proc/uptime) s"
# through a pipe: the command sees no terminal, as in a test on the host
set -o pipefail
chroot $R /bin/sh /run/profleet/run.sh </dev/null 2>&1 | cat >/dev/ttyS1
rc=$?
say "command done after $(cut -d " " -f 1 /proc/uptime) s"
umount "$R$out"
say "profleet-boot-status=$rc"
halt
'

module_paths() { # modules.dep, module names: paths in load order, dependencies first
	awk -v want="$2" 'function norm(p,  b) {
			b = p; sub(/.*\//, "", b); sub(/\.ko(\.(xz|zst|gz))?$/, "", b); gsub(/-/, "_", b)
			return b
		}
		function visit(m,  d, k, i) {
			if (m in seen) return
			seen[m] = 1
			if (!(m in file)) return # built in, or not built at all
			k = split(deps[m], d, " ")
			for (i = 1; i <= k; i++) visit(d[i])
			print file[m]
		}
		{ p = $1; sub(/:$/, "", p); m = norm(p); file[m] = p; deps[m] = ""
		  for (i = 2; i <= NF; i++) deps[m] = deps[m] " " norm($i) }
		END { n = split(want, w, " "); for (i = 1; i <= n; i++) visit(w[i]) }' "$1"
}

build_initramfs() { # output file
	d=$T/initramfs
	mkdir -p "$d/bin" "$d/dev" "$d/proc" "$d/sys" "$d/lib/modules"
	cp "$BUSYBOX" "$d/bin/busybox"
	printf '%s' "$INIT" >"$d/init"
	chmod 0755 "$d/init"
	# busybox's insmod takes plain ELF only: decompress here
	module_paths "$MODDIR/modules.dep" "$MODULES" | while read -r p; do
		m=${p##*/}
		case $m in
		*.xz) xz -dc "$MODDIR/$p" >"$d/lib/modules/${m%.xz}" && m=${m%.xz} ;;
		*.zst) zstd -qdc "$MODDIR/$p" >"$d/lib/modules/${m%.zst}" && m=${m%.zst} ;;
		*.gz) gzip -dc "$MODDIR/$p" >"$d/lib/modules/${m%.gz}" && m=${m%.gz} ;;
		*) cp "$MODDIR/$p" "$d/lib/modules/$m" ;;
		esac
		echo "$m"
	done >"$d/modules"
	# uncompressed: unpacking is quicker than decompressing under TCG
	(cd "$d" && find . | cpio -o -H newc --quiet) >"$1.tmp"
	mv "$1.tmp" "$1"
}

initramfs() { # prints the path of the cached initramfs, building it first if needed
	key=$( (printf '%s' "$INIT$MODULES"; "$BUSYBOX" | head -n 1) | cksum | cut -d ' ' -f 1)
	img=$KDIR/initramfs-$key.cpio
	if [ ! -f "$img" ]; then
		if ! touch "$KDIR/.initramfs.lock" 2>/dev/null; then
			img=$T/initramfs.cpio # a read-only kernel directory: not cached
			build_initramfs "$img"
		else
			exec 8>"$KDIR/.initramfs.lock"
			flock 8
			if [ ! -f "$img" ]; then
				for f in "$KDIR"/initramfs-*.cpio; do rm -f "$f"; done # older inits
				build_initramfs "$img"
			fi
			flock -u 8
		fi
	fi
	echo "$img"
}

# ---- the command ------------------------------------------------------------------
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
write_run() { # command...
	{
		echo "# written by tests/kernels/boot.sh: the caller's environment, directory and command"
		export -p
		printf 'cd %s 2>/dev/null || { echo "boot.sh: no %s in the guest, running in /" >&2; cd /; }\n' \
			"$(q "$PWD")" "$PWD"
		printf 'exec'
		for a; do printf ' %s' "$(q "$a")"; done
		echo
	} >"$T/run.sh"
}

# ---- the run -------------------------------------------------------------------------
IMG=$(initramfs)
write_run "$@"
shares
CONSOLE=$OUTDIR/console.log
: >"$CONSOLE"
start=$(date +%s)
# TCG only: this machine's /dev/kvm is nested and cannot run a stock kernel. One
# vCPU without cx16: with cmpxchg16b advertised, or with two vCPUs, guests died
# now and then (panics, int3 oopses); never with both settings.
set +e
# shellcheck disable=SC2086 # SHARES is a list of options
timeout -k 10 "$TIMEOUT" "$QEMU" -nodefaults -no-user-config -display none -no-reboot \
	-accel tcg,thread=multi -cpu max,-cx16 -smp 1 -m "$MEM" \
	-kernel "$VMLINUZ" -initrd "$IMG" \
	-append "console=ttyS0 panic=-1 oops=panic quiet random.trust_cpu=on profleet.fs=$FS profleet.ctl=$T profleet.out=$OUTDIR ${PROFLEET_BOOT_APPEND:-}" \
	-serial "file:$CONSOLE" -serial stdio -device virtio-rng-pci \
	$SHARES </dev/null &
# in the background, so that a signal to this script runs its traps at once, and
# cleanup() ends timeout (which ends qemu) with the virtiofsd daemons
qemu_pid=$!
PIDS="$PIDS $qemu_pid"
wait "$qemu_pid"
rc=$?
PIDS=${PIDS% "$qemu_pid"}	# reaped: its pid may be another process's now
set -e
took=$(($(date +%s) - start))

tr -d '\r' <"$CONSOLE" >"$T/console"
status=$(sed -n 's/^profleet-init: profleet-boot-status=\([0-9]*\).*/\1/p' "$T/console" | tail -n 1)
ready=$(sed -n 's/^profleet-init: ready after \([0-9.]*\) s.*/\1/p' "$T/console" | tail -n 1)
if [ -n "$status" ]; then
	echo "boot.sh: $REL: command started ${ready:-?} s after boot, exit status $status, ${took} s in all" >&2
	exit "$status"
fi
if [ "$rc" -eq 124 ]; then
	echo "boot.sh: $REL: timed out after $TIMEOUT s (PROFLEET_BOOT_TIMEOUT); the console's last 40 lines:" >&2
	rc=124
elif grep -q 'Kernel panic' "$T/console"; then
	echo "boot.sh: $REL: the guest kernel panicked after ${took} s; the console's last 40 lines:" >&2
	rc=125
else
	echo "boot.sh: $REL: the guest stopped without a status (qemu exit status $rc) after ${took} s; the console's last 40 lines:" >&2
	[ -s "$T/virtiofsd.log" ] && sed 's/^/virtiofsd: /' "$T/virtiofsd.log" >&2
	rc=125
fi
[ -s "$T/console" ] || echo "  | (nothing)" >&2
tail -n 40 "$T/console" | sed 's/^/  | /' >&2
exit $rc
