#!/bin/sh
# Prints the URI of the Debian archive that this machine's own apt sources name:
# the one whose Release file says o=Debian,l=Debian (apt-cache policy, once apt
# has its lists); before any apt-get update, the first entry of the sources
# (one-line /etc/apt/sources.list{,.d/*.list} or deb822 .sources) for a plain
# release (not -security). No host name is written anywhere in
# the repository: CI, the e2e build and the kernel tier all ask this script.
# PROFLEET_DEBIAN_MIRROR overrides it. Exit status 1 when no entry is found.
set -eu

# prints "URI SUITE" for every enabled deb entry, one-line and deb822 formats
apt_entries() {
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		# deb [opts] URI SUITE COMPONENTS...
		sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" { print $2, $3 }'
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk 'function flush() {
				if (types ~ /(^| )deb( |$)/ && enabled !~ /^[Nn]o/)
					for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print u[i], s[j]
				types = ""; enabled = ""; nu = 0; ns = 0
			}
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			{ key = tolower($1); sub(/:$/, "", key); $1 = "" }
			key == "types" { types = $0 " " }
			key == "enabled" { enabled = $2 }
			key == "uris" { nu = split($0, u, " ") }
			key == "suites" { ns = split($0, s, " ") }
			END { flush() }' "$f"
	done
}

# from the sources alone: an entry whose suite is a plain release name (not -security)
debian_archive() {
	apt_entries | awk '$2 ~ /^(bullseye|bookworm|trixie|forky|duke|sid|unstable|stable|oldstable|testing)(-updates|-backports)?$/ &&
		$1 ~ /^(https?|file|mirror\+[a-z]+):/ { print $1; exit }'
}

# from apt's lists: only Debian's own archive signs o=Debian,l=Debian
from_policy() {
	apt-cache policy 2>/dev/null | awk '
		/^ *-?[0-9]+ (https?|file|mirror\+[a-z]+):/ { uri = $2; next }
		/^ *release / && uri != "" && /o=Debian,/ && /l=Debian,/ { print uri; exit }
		/^ *[0-9]+ / { uri = "" }'
}

if [ -n "${PROFLEET_DEBIAN_MIRROR:-}" ]; then
	echo "$PROFLEET_DEBIAN_MIRROR"
	exit 0
fi
uri=$(from_policy)
[ -n "$uri" ] || uri=$(debian_archive)
[ -n "$uri" ] || { echo "debian-archive.sh: no Debian release in this machine's apt sources" >&2; exit 1; }
echo "$uri"
