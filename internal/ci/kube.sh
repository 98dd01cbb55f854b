#!/usr/bin/env bash
# Builds the Kubernetes binaries drainfx runs for real, from source through
# the Go module proxy alone — no prebuilt download, no container engine:
#
#   - etcd and kube-apiserver: the tests against a real API server
#     (internal/kubetest, modules/kubemod) and every real-cluster run;
#   - kube-controller-manager (its EndpointSlice controller) and kube-proxy:
#     "drainfx rollout -dataplane kube" (internal/kube), whose Service,
#     EndpointSlices and forwarding rules are the real ones.
#
#   bash internal/ci/kube.sh        # into ${DRAINFX_KUBE_DIR:-$HOME/.cache/drainfx-kube}/bin
#
# Nothing is started here. A binary already there at the pinned version is
# kept, so a warm run takes a second. Cold, on 2 cores: about 12 minutes
# for the four, ~3 GB of memory at the peak (each link), ~1 GB of modules
# and ~4 GB of build cache.
set -euo pipefail

# The versions, pinned here and nowhere else. The Kubernetes binaries are
# main packages of k8s.io/kubernetes, whose go.mod points its k8s.io/* staging
# modules at ./staging; they are published as v0.MINOR.PATCH.
KUBERNETES_VERSION=v1.37.2
STAGING_VERSION=v0.37.2
ETCD_VERSION=v3.7.3

DIR=${DRAINFX_KUBE_DIR:-$HOME/.cache/drainfx-kube}
BIN=$DIR/bin
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
# A build directory of our own, outside any workspace of the repository.
export GOWORK=off GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
mkdir -p "$BIN" "$DIR/build/etcd" "$DIR/build/kubernetes"

say() { echo "kube.sh: $*" >&2; }

# has NAME WANT: the binary is there and prints WANT in its --version.
# (Read whole first: with pipefail, grep -q quitting early could fail the
# pipe with the binary's SIGPIPE.)
has() {
	local v
	[ -x "$BIN/$1" ] && v=$("$BIN/$1" --version 2>/dev/null) && grep -qF "$2" <<<"$v"
}

# tidy MODULE PACKAGE...: completes the go.mod of the build module in
# $DIR/build/MODULE (written by the caller) for the packages.
tidy() {
	local module=$1
	shift
	cd "$DIR/build/$module"
	{
		printf '//go:build tools\n\npackage tools\n\nimport (\n'
		printf '\t_ "%s"\n' "$@"
		printf ')\n'
	} >tools.go
	"$GO" mod tidy
}

# build MODULE NAME PACKAGE LDFLAGS: builds PACKAGE of the build module in
# $DIR/build/MODULE into $BIN/NAME.
build() {
	local module=$1 name=$2 pkg=$3 ldflags=$4 started=$SECONDS
	cd "$DIR/build/$module"
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
	tidy etcd go.etcd.io/etcd/server/v3
	build etcd etcd go.etcd.io/etcd/server/v3 ""
fi

# The three Kubernetes binaries come from one build module: its go.mod
# requires k8s.io/kubernetes and points its staging modules at their
# published versions.
missing=()
for name in kube-apiserver kube-controller-manager kube-proxy; do
	if has "$name" "Kubernetes $KUBERNETES_VERSION"; then
		say "$name $KUBERNETES_VERSION: present"
	else
		missing+=("$name")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	say "building ${missing[*]} $KUBERNETES_VERSION"
	kgomod=$("$GO" mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
	[ -f "$kgomod" ] || { say "k8s.io/kubernetes@$KUBERNETES_VERSION: no go.mod from the module proxy"; exit 1; }
	{
		printf 'module drainfx.test/kubernetes\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\n' "$KUBERNETES_VERSION"
		echo "replace ("
		# Every "k8s.io/NAME => ./staging/src/k8s.io/NAME" of its go.mod.
		awk -v v="$STAGING_VERSION" '$2 == "=>" && $3 ~ /^\.\/staging\// {print "\t" $1 " => " $1 " " v}' "$kgomod"
		echo ")"
	} >"$DIR/build/kubernetes/go.mod"
	# The version the binaries report (and that `has` checks above).
	minor=${KUBERNETES_VERSION#v1.}
	minor=${minor%%.*}
	ldflags=""
	for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
		ldflags+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
	done
	pkgs=()
	for name in "${missing[@]}"; do
		pkgs+=("k8s.io/kubernetes/cmd/$name")
	done
	tidy kubernetes "${pkgs[@]}"
	for name in "${missing[@]}"; do
		build kubernetes "$name" "k8s.io/kubernetes/cmd/$name" "$ldflags"
	done
fi

echo "DRAINFX_KUBE_BIN=$BIN"
