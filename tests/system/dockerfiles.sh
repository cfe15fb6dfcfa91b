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

for img in agent controller; do
	df=$TOP/Dockerfile.$img
	bin=$BUILD/bin/profleet-$img
	check "Dockerfile.$img exists and is multi-stage (bookworm build, bookworm-slim runtime)" \
		sh -c "grep -q '^FROM debian:bookworm AS build' '$df' && grep -q '^FROM debian:bookworm-slim' '$df' && grep -q 'COPY --from=build' '$df'"
	check "Dockerfile.$img: package lists read ($(pkgs "$df" 1 | wc -l) build, $(pkgs "$df" 2 | wc -l) runtime)" \
		sh -c "[ $(pkgs "$df" 1 | wc -l) -gt 10 ] && [ $(pkgs "$df" 2 | wc -l) -gt 5 ]"
	missing=""
	for p in $(pkgs "$df" 1) $(pkgs "$df" 2); do
		apt-cache show "$p" >/dev/null 2>&1 || missing="$missing $p"
	done
	check "every package Dockerfile.$img installs is in Debian's index${missing:+ (missing:$missing)}" [ -z "$missing" ]
	runtime=$(pkgs "$df" 2 | tr '\n' ' ')
	need=""
	for lib in $(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
		path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ { print $NF; exit }')
		pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
		[ -z "$pkg" ] && pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
		case $pkg in libc6 | "") continue ;; esac
		case " $runtime " in *" $pkg "*) ;; *) need="$need $pkg($lib)" ;; esac
	done
	check "the runtime stage of Dockerfile.$img installs every library profleet-$img links${need:+ (not:$need)}" [ -z "$need" ]
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
