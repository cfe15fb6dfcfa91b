#!/bin/sh
# Fetches the kernel matrix of the kernel tier: one Debian kernel package per
# suite, extracted (never installed) into a cache outside the checkout.
#   tests/kernels/fetch.sh [LABEL...]
#   tests/kernels/fetch.sh --list      (the labels, one a line; no download)
# Prints one line per kernel: "LABEL RELEASE DIR" (RELEASE is its `uname -r`,
# DIR holds the extracted packages and is what tests/kernels/boot.sh takes).
# Labels and what each one is (the newest generic amd64 flavour served there;
# the cloud flavour lacks 9p and the drivers a generic guest needs):
#   bullseye            5.10 from bullseye (bullseye-security's pool is not served)
#   bookworm            6.1 from bookworm
#   bookworm-backports  6.12 from bookworm-backports
#   trixie              6.16-6.18 from trixie-backports, else trixie
#   newest              6.19 or later: the newest of sid, trixie-backports, experimental
# A label resolved once is reused from the cache without the network; set
# PROFLEET_KERNEL_REFRESH=1 to look for newer packages.
# Environment: PROFLEET_KERNEL_CACHE (default /var/cache/profleet/kernels),
# PROFLEET_KERNELS (labels, when none are given as arguments),
# PROFLEET_DEBIAN_MIRROR (archive URI; default: the one this machine's apt uses).
# Exit status: 0 when every label was printed, 1 when one could not be fetched.
set -eu

CACHE=${PROFLEET_KERNEL_CACHE:-/var/cache/profleet/kernels}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# label, suites in order of preference (or "newest:" and suites: the newest of
# them all), lowest and first excluded upstream version
MATRIX="bullseye bullseye 5.10 5.11
bookworm bookworm 6.1 6.2
bookworm-backports bookworm-backports 6.12 6.13
trixie trixie-backports,trixie 6.16 6.19
newest newest:sid,trixie-backports,experimental 6.19 999"

log() { echo "fetch.sh: $*" >&2; }

# ---- the archive: the URI this machine's own apt sources name ---------------
# the main archive's URI, from this machine's own apt sources
mirror() { sh "$(dirname "$0")/../debian-archive.sh"; }

# ---- a private apt: its own sources, lists and cache; the host's are untouched
apt_private() { # state dir, apt-get arguments...
	st=$1
	shift
	apt-get -q -o Dir::Etc::SourceList="$st/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
		-o Dir::Etc::Preferences=/nonexistent -o Dir::Etc::PreferencesParts=/nonexistent \
		-o Dir::State::Lists="$st/lists" -o Dir::Cache="$st/cache" \
		-o Dir::State::extended_states="$st/extended_states" \
		-o APT::Update::Post-Invoke-Success::= -o Acquire::Languages=none "$@"
}

apt_setup() { # state dir, mirror URI, suites
	mkdir -p "$1/lists/partial" "$1/cache/archives/partial"
	signed=""
	[ -r "$KEYRING" ] && signed="[signed-by=$KEYRING] "
	for s in $3; do
		echo "deb $signed$2 $s main"
	done >"$1/sources.list"
	# a suite that fails leaves no lists: its labels say so, the others go on
	apt_private "$1" update >"$1/update.log" 2>&1
	grep -E '^(E|W):' "$1/update.log" | sed 's/^/fetch.sh: apt-get update: /' >&2
	ls "$1"/lists/*_Packages* >/dev/null 2>&1
}

# ---- choosing a package --------------------------------------------------------
# prints "PACKAGE VERSION" of every generic amd64 kernel image in SUITE's lists
suite_images() { # state dir, suite
	for f in "$1"/lists/*_dists_"$2"_main_binary-amd64_Packages*; do
		[ -f "$f" ] || continue
		/usr/lib/apt/apt-helper cat-file "$f"
	done | awk '/^Package: / { p = $2 } /^Version: / { print p, $2 }' |
		grep -E '^linux-image-[0-9][^ ]*-amd64 ' | grep -vE -- '-(cloud|rt)-amd64 ' || true
}

# version A >= version B, comparing upstream versions numerically
ver_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]; }

# prints "SUITE PACKAGE VERSION": the newest image in range of the first suite that
# has one; with "newest:SUITES", the newest in range of them all (Debian's ordering)
choose() { # state dir, suites (comma-separated), lowest, first excluded
	case $2 in
	newest:*)
		top=""
		for s in $(echo "${2#newest:}" | tr , ' '); do
			cand=$(choose "$1" "$s" "$3" "$4") || continue
			if [ -z "$top" ] || dpkg --compare-versions "${cand##* }" gt "${top##* }"; then
				top=$cand
			fi
		done
		[ -n "$top" ] && echo "$top"
		return
		;;
	esac
	for s in $(echo "$2" | tr , ' '); do
		best=$(suite_images "$1" "$s" | while read -r pkg ver; do
			up=${ver%%-*}
			up=${up%%~*}
			ver_ge "$up" "$3" && ! ver_ge "$up" "$4" && echo "$pkg $ver"
		done | sort -V -k2,2 | tail -n 1)
		[ -n "$best" ] && echo "$s $best" && return 0
	done
	return 1
}

# ---- extracting ----------------------------------------------------------------
# From 7.x (and late 6.19 backports) linux-image-R is a metapackage over
# linux-binary-R (the kernel), linux-modules-R and linux-base-R: take those too.
companions() { # state dir, suite, release, version
	for f in "$1"/lists/*_dists_"$2"_main_binary-amd64_Packages*; do
		/usr/lib/apt/apt-helper cat-file "$f"
	done | awk -v r="$3" -v v="$4" '/^Package: / { p = $2 }
		/^Version: / && $2 == v && (p == "linux-binary-" r || p == "linux-modules-" r || p == "linux-base-" r) { print p }'
}

# The packages leave modules.dep to depmod in their postinst: run it on the tree.
# kmod's depmod only knows lib/modules: merged-/usr trees get a lib -> usr/lib link.
depmod_tree() { # kernel dir, release
	[ -f "$1/root/lib/modules/$2/modules.dep" ] && return 0
	[ -e "$1/root/lib" ] || ln -s usr/lib "$1/root/lib"
	depmod -b "$1/root" "$2"
}

fetch_one() { # state dir, label, suite, package, version
	rel=${4#linux-image-}
	dir=$CACHE/$rel
	if [ ! -f "$dir/kernel.env" ]; then
		log "$2: downloading $4 $5 from $3"
		work=$(mktemp -d "$CACHE/.extract.XXXXXX")
		chmod 755 "$work"
		pkgs="$4 $(companions "$1" "$3" "$rel" "$5" | tr '\n' ' ')"
		specs=""
		for p in $pkgs; do specs="$specs $p=$5"; done
		# shellcheck disable=SC2086 # one word per package
		if ! (cd "$work" && apt_private "$1" download $specs >download.log 2>&1); then
			tail -n 5 "$work/download.log" >&2
			rm -rf "$work"
			return 1
		fi
		# (set -e does not hold in here: fetch_one is called with ||)
		for deb in "$work"/*.deb; do
			dpkg-deb -x "$deb" "$work/root" || { rm -rf "$work"; return 1; }
		done
		rm -f "$work"/*.deb
		depmod_tree "$work" "$rel" || { rm -rf "$work"; return 1; }
		printf 'LABEL=%s\nSUITE=%s\nPACKAGE=%s\nVERSION=%s\nRELEASE=%s\n' \
			"$2" "$3" "$4" "$5" "$rel" >"$work/kernel.env"
		rm -rf "$dir"
		mv "$work" "$dir"
	fi
	mkdir -p "$CACHE/labels"
	echo "$rel" >"$CACHE/labels/$2.tmp"
	mv "$CACHE/labels/$2.tmp" "$CACHE/labels/$2"
}

# ---- main --------------------------------------------------------------------------
if [ "${1:-}" = --list ]; then
	echo "$MATRIX" | awk '{ print $1 }'
	exit 0
fi
labels=${*:-${PROFLEET_KERNELS:-$(echo "$MATRIX" | awk '{ print $1 }')}}
for l in $labels; do
	echo "$MATRIX" | awk -v l="$l" '$1 == l { f = 1 } END { exit !f }' ||
		{ log "unknown label '$l' (known: $(echo "$MATRIX" | awk '{ printf "%s ", $1 }'))"; exit 1; }
done

mkdir -p "$CACHE"
# one fetch at a time: a second run waits, then finds the kernels extracted
exec 9>"$CACHE/.lock"
flock -w 3600 9 || { log "could not lock $CACHE/.lock"; exit 1; }
rm -rf "$CACHE"/.apt.* "$CACHE"/.extract.* # left by a run that was killed

# which labels need the archive
need=""
for l in $labels; do
	rel=$(cat "$CACHE/labels/$l" 2>/dev/null || true)
	if [ -z "$rel" ] || [ ! -f "$CACHE/$rel/kernel.env" ] || [ -n "${PROFLEET_KERNEL_REFRESH:-}" ]; then
		need="$need $l"
	fi
done

status=0
if [ -n "$need" ]; then
	st=$(mktemp -d "$CACHE/.apt.XXXXXX")
	chmod 755 "$st" # apt downloads as the user _apt
	trap 'rm -rf "$st"' EXIT
	uri=$(mirror) || uri=""
	if [ -z "$uri" ]; then
		log "no Debian archive in /etc/apt/sources.list{,.d}; set PROFLEET_DEBIAN_MIRROR"
		status=1
	elif ! apt_setup "$st" "$uri" "$(for l in $need; do
		echo "$MATRIX" | awk -v l="$l" '$1 == l { print $2 }'; done | sed 's/^newest://' |
		tr ',' '\n' | sort -u)"; then
		log "apt-get update from $uri failed"
		status=1
	else
		for l in $need; do
			# shellcheck disable=SC2046 # suites, lowest, first excluded
			set -- $(echo "$MATRIX" | awk -v l="$l" '$1 == l { print $2, $3, $4 }')
			if pick=$(choose "$st" "$1" "$2" "$3"); then
				# shellcheck disable=SC2086 # suite, package, version
				fetch_one "$st" "$l" $pick || { log "$l: download failed"; status=1; }
			else
				log "$l: no generic amd64 kernel $2 <= version < $3 in $1"
				status=1
			fi
		done
	fi
fi

# a refresh drops the labels the matrix has no more, and the kernels none names
if [ -n "${PROFLEET_KERNEL_REFRESH:-}" ] && [ "$status" -eq 0 ]; then
	for f in "$CACHE"/labels/*; do
		[ -f "$f" ] || continue
		echo "$MATRIX" | awk -v l="${f##*/}" '$1 == l { f = 1 } END { exit !f }' || rm -f "$f"
	done
	for d in "$CACHE"/*/kernel.env; do
		[ -f "$d" ] || continue
		d=${d%/kernel.env}
		grep -qxF "${d##*/}" "$CACHE"/labels/* 2>/dev/null || rm -rf "$d"
	done
fi

for l in $labels; do
	rel=$(cat "$CACHE/labels/$l" 2>/dev/null || true)
	if [ -n "$rel" ] && [ -f "$CACHE/$rel/kernel.env" ] && depmod_tree "$CACHE/$rel" "$rel"; then
		echo "$l $rel $CACHE/$rel"
	else
		log "$l: not available"
		status=1
	fi
done
exit $status
