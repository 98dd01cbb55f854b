#!/usr/bin/env bash
# Builds the two binaries the tests against a real Kubernetes API server
# need (internal/kubetest): etcd and kube-apiserver, from source through the
# Go module proxy alone — no prebuilt download, no container engine. Nothing
# is started here; each test starts its own pair on free loopback ports.
#
#   bash internal/ci/kube.sh        # into ${DRAINFX_KUBE_DIR:-$HOME/.cache/drainfx-kube}/bin
#
# A binary already there at the pinned version is kept, so a warm run takes
# a second. Cold, on 2 cores: about 6 minutes, ~3 GB of memory at the peak
# (kube-apiserver's link), ~1 GB of modules and ~3 GB of build cache.
set -euo pipefail

# The versions, pinned here and nowhere else. kube-apiserver is the main
# package of k8s.io/kubernetes, whose go.mod points its k8s.io/* staging
# modules at ./staging; they are published as v0.MINOR.PATCH.
KUBERNETES_VERSION=v1.37.2
STAGING_VERSION=v0.37.2
ETCD_VERSION=v3.7.3

DIR=${DRAINFX_KUBE_DIR:-$HOME/.cache/drainfx-kube}
BIN=$DIR/bin
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
# A build directory of our own, outside any workspace of the repository.
export GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
mkdir -p "$BIN" "$DIR/build/etcd" "$DIR/build/kube-apiserver"

say() { echo "kube.sh: $*" >&2; }

# has NAME WANT: the binary is there and prints WANT in its --version.
has() { [ -x "$BIN/$1" ] && "$BIN/$1" --version 2>/dev/null | grep -qF "$2"; }

# build NAME PACKAGE LDFLAGS: builds PACKAGE of the build module in
# $DIR/build/NAME (go.mod written by the caller) into $BIN/NAME.
build() {
	local name=$1 pkg=$2 ldflags=$3 started=$SECONDS
	cd "$DIR/build/$name"
	printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" >tools.go
	"$GO" mod tidy
	nice -n 10 "$GO" build -ldflags "$ldflags" -o "$BIN/$name.new" "$pkg"
	mv "$BIN/$name.new" "$BIN/$name"
	say "$name built in $((SECONDS - started)) s"
}

if has etcd "etcd Version: ${ETCD_VERSION#v}"; then
	say "etcd $ETCD_VERSION: present"
else
	say "building etcd $ETCD_VERSION"
	# etcd's server module replaces its sibling modules with ../ paths: use
	# their published versions instead.
	cat >"$DIR/build/etcd/go.mod" <<EOF
module drainfx.test/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $ETCD_VERSION
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $ETCD_VERSION
)
EOF
	build etcd go.etcd.io/etcd/server/v3 ""
fi

if has kube-apiserver "Kubernetes $KUBERNETES_VERSION"; then
	say "kube-apiserver $KUBERNETES_VERSION: present"
else
	say "building kube-apiserver $KUBERNETES_VERSION"
	kgomod=$("$GO" mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
	[ -f "$kgomod" ] || { say "k8s.io/kubernetes@$KUBERNETES_VERSION: no go.mod from the module proxy"; exit 1; }
	{
		printf 'module drainfx.test/kube-apiserver\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\n' "$KUBERNETES_VERSION"
		echo "replace ("
		# Every "k8s.io/NAME => ./staging/src/k8s.io/NAME" of its go.mod.
		awk -v v="$STAGING_VERSION" '$2 == "=>" && $3 ~ /^\.\/staging\// {print "\t" $1 " => " $1 " " v}' "$kgomod"
		echo ")"
	} >"$DIR/build/kube-apiserver/go.mod"
	# The version the binary reports (and that `has` checks above).
	minor=${KUBERNETES_VERSION#v1.}
	minor=${minor%%.*}
	ldflags=""
	for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
		ldflags+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
	done
	build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$ldflags"
fi

echo "DRAINFX_KUBE_BIN=$BIN"
