#!/bin/sh
# kube-apiserver alone: see build-kube.sh. Prints the binary's path.
exec sh "$(dirname "$0")/build-kube.sh" kube-apiserver
