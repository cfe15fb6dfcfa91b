#!/bin/sh
# The Dockerfiles, checked without a container engine (this machine has none):
# every package they install exists in Debian bookworm's index, the runtime
# stage installs the package of every shared library the binary links
# directly, the build stage installs what `make` needs (the PKGS_BUILD list),
# and the controller's image runs as a non-root user.
. "$(dirname "$0")/lib.sh"

# the packages of the RUN apt-get install lines of one stage (1 = build, 2 = runtime)
pkgs() { # dockerfile stage
	awk -v want="$2" '/^FROM /{ stage++ } stage == want' "$1" |
		sed -n '/apt-get install/,/rm -rf/p' | tr ' \\' '\n\n' |
		grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -vE '^(apt-get|install|rm|update|and|apt|lists|var|lib|DEBIAN_FRONTEND.*)$' |
		grep -vE '^(groupadd|useradd|mkdir|chown|profleet|nologin)$' | sort -u
}

# the Debian package that holds a shared library the dynamic linker finds; nothing if none
lib_pkg() { # soname
	path=$(ldconfig -p | awk -v l="$1" '$1 == l && /x86-64/ { print $NF; exit }')
	[ -n "$path" ] || return 0
	pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
	[ -n "$pkg" ] || pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
	echo "$pkg"
}

# The runtime stage installs the package of every library the binary links: a missing
# binary, one readelf cannot read or one that links nothing fails (never a silent pass).
runtime_libs() { # img binary runtime-packages
	if [ ! -x "$2" ]; then
		not_ok "the runtime stage of Dockerfile.$1: profleet-$1 is not built ($2 missing)"
		return
	fi
	if ! dyn=$(readelf -d "$2" 2>&1); then
		not_ok "the runtime stage of Dockerfile.$1: readelf cannot read $2"
		return
	fi
	libs=$(echo "$dyn" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
	if [ -z "$libs" ]; then
		not_ok "the runtime stage of Dockerfile.$1: $2 links no shared library (not our build?)"
		return
	fi
	need=""
	for lib in $libs; do
		pkg=$(lib_pkg "$lib")
		case $pkg in
		libc6) ;;
		"") need="$need ?($lib)" ;;	# not found, or from no package: cannot vouch for it
		*) case " $3 " in *" $pkg "*) ;; *) need="$need $pkg($lib)" ;; esac ;;
		esac
	done
	check "the runtime stage of Dockerfile.$1 installs every library profleet-$1 links${need:+ (not:$need)}" \
		[ -z "$need" ]
}

# only a tool that is really missing skips a check, visibly
have() { command -v "$1" >/dev/null 2>&1; }
no_libtools=""
for t in readelf ldconfig dpkg; do have "$t" || no_libtools="$no_libtools $t"; done

for img in agent controller; do
	df=$TOP/Dockerfile.$img
	bin=$BUILD/bin/profleet-$img
	# the bases are arguments (e2e/images.sh gives a debootstrap'd bookworm); their
	# defaults are Debian's images
	check "Dockerfile.$img exists and is multi-stage (bookworm build, bookworm-slim runtime, by default)" \
		sh -c "grep -q '^ARG BUILD_IMAGE=debian:bookworm\$' '$df' && grep -q '^ARG RUNTIME_IMAGE=debian:bookworm-slim\$' '$df' &&
			grep -q '^FROM \${BUILD_IMAGE} AS build' '$df' && grep -q '^FROM \${RUNTIME_IMAGE}\$' '$df' &&
			grep -q 'COPY --from=build' '$df'"
	check "Dockerfile.$img: package lists read ($(pkgs "$df" 1 | wc -l) build, $(pkgs "$df" 2 | wc -l) runtime)" \
		sh -c "[ $(pkgs "$df" 1 | wc -l) -gt 10 ] && [ $(pkgs "$df" 2 | wc -l) -gt 5 ]"
	if have apt-cache; then
		missing=""
		for p in $(pkgs "$df" 1) $(pkgs "$df" 2); do
			apt-cache show "$p" >/dev/null 2>&1 || missing="$missing $p"
		done
		check "every package Dockerfile.$img installs is in Debian's index${missing:+ (missing:$missing)}" [ -z "$missing" ]
	else
		skip "every package Dockerfile.$img installs is in Debian's index: apt-cache not installed"
	fi
	if [ -z "$no_libtools" ]; then
		runtime_libs "$img" "$bin" "$(pkgs "$df" 2 | tr '\n' ' ')"
	else
		skip "the runtime stage of Dockerfile.$img installs what profleet-$img links:$no_libtools not installed"
	fi
	build_need=""
	# (g++ builds only the C++ test workloads)
	for p in $(sed -n 's/^PKGS_BUILD="\(.*\)"/\1/p' "$TOP/tests/deps.sh" | sed 's/ g++ / /'); do
		case " $(pkgs "$df" 1 | tr '\n' ' ') " in *" $p "*) ;; *) build_need="$build_need $p" ;; esac
	done
	check "the build stage of Dockerfile.$img installs the build packages of tests/deps.sh${build_need:+ (not:$build_need)}" \
		[ -z "$build_need" ]
done
check "the controller image runs as a non-root user" \
	sh -c "grep -q '^USER 65532' '$TOP/Dockerfile.controller'"
finish
