#!/usr/bin/env bash
# Builds the uWebSockets peer (bench/peers/uws/server.cpp) from the public
# sources of uNetworking/uWebSockets and uNetworking/uSockets, g++ -O3 -flto,
# in two flavours:
#   build/bench/uws/uws-server      plain TCP (uSockets with LIBUS_NO_SSL)
#   build/bench/uws/uws-server-ssl  OpenSSL (LIBUS_USE_OPENSSL, Debian's libssl),
#                                   for the wss rows (--cert/--key)
# Both link zlib, so both can do permessage-deflate (--deflate).
#
#   bench/peers/uws/build.sh [--check | --inputs]
#
# Where the sources come from, first that works:
#   UWS_SRC, USOCKETS_SRC  a source tree (uWebSockets' has src/App.h) or a git
#                          directory (a bare mirror, e.g. /work/.mirror/
#                          uNetworking+uWebSockets/repo): its UWS_REF (default
#                          HEAD) is exported with `git archive`; uSockets then
#                          defaults to the commit uWebSockets pins as its
#                          submodule. USOCKETS_SRC may be left out when UWS_SRC
#                          is a source tree with uSockets/ checked out.
#   otherwise              git clone of https://github.com/uNetworking/... into
#                          build/bench/uws/src (60 s at most).
# Exit status: 0 built (or up to date), 3 the sources cannot be had (the reason
# on stderr; bench/run.sh then skips the uws rows), 1 a build failure.
# --check: only says (exit 0 or 3) whether the sources can be had.
# --inputs: prints the hash of this script and server.cpp that a binary built
# from them records in BINARY.inputs (a binary is up to date while they match,
# whatever git did to the files' times).
# build/bench/uws/VERSION says which versions were built (bench/run.sh prints it).
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT=$PWD
OUT=$ROOT/build/bench/uws
SRC=$OUT/src
CHECK=0
[ "${1:-}" = --check ] && CHECK=1
INPUTS=$(cat bench/peers/uws/server.cpp bench/peers/uws/build.sh | sha256sum | cut -c1-16)
if [ "${1:-}" = --inputs ]; then echo "$INPUTS"; exit 0; fi

no_sources() { echo "bench/peers/uws/build.sh: $*" >&2; exit 3; }

# export_tree GITDIR REF DEST: the tree of REF, as files, in DEST
export_tree() {
    rm -rf "$3.part"; mkdir -p "$3.part"
    git --git-dir="$1" archive "$2" | tar -x -C "$3.part"
    rm -rf "$3"; mv "$3.part" "$3"
}
is_gitdir() { git --git-dir="$1" rev-parse --verify -q HEAD >/dev/null 2>&1; }
describe() { git --git-dir="$1" describe --tags --always "$2" 2>/dev/null || echo "$2"; }

# take SRC NAME MARKER REF: a source tree as it is, or REF of a git directory
# exported under build/; sets TAKEN (its directory) and TAKEN_DESC, or exits 3.
take() {
    local src=$1 name=$2 marker=$3 ref=$4 c
    if [ -f "$src/$marker" ]; then
        TAKEN=$src; TAKEN_DESC="$name from $src"
    elif is_gitdir "$src" && c=$(git --git-dir="$src" rev-parse --short "$ref" 2>/dev/null); then
        TAKEN=$SRC/$name-$c
        [ $CHECK = 1 ] || [ -f "$TAKEN/$marker" ] || export_tree "$src" "$c" "$TAKEN"
        TAKEN_DESC="$name $(describe "$src" "$c") ($c)"
    else
        no_sources "$src is neither a $name source tree nor a git directory holding $ref"
    fi
}

# Sets UWS_DIR, USOCKETS_DIR and DESC, or exits 3.
find_sources() {
    local uref=${UWS_REF:-HEAD} sref
    if [ -n "${UWS_SRC:-}" ]; then
        take "$UWS_SRC" uWebSockets src/App.h "$uref"
        UWS_DIR=$TAKEN; DESC=$TAKEN_DESC
        if [ -n "${USOCKETS_SRC:-}" ]; then
            # by default the commit uWebSockets pins, when it is a git directory
            sref=${USOCKETS_REF:-}
            if [ -z "$sref" ] && is_gitdir "$UWS_SRC"; then
                sref=$(git --git-dir="$UWS_SRC" ls-tree "$uref" uSockets | awk '{print $3}')
            fi
            take "$USOCKETS_SRC" uSockets src/libusockets.h "${sref:-HEAD}"
            USOCKETS_DIR=$TAKEN; DESC="$DESC on $TAKEN_DESC"
        elif [ -f "$UWS_DIR/uSockets/src/libusockets.h" ]; then
            USOCKETS_DIR=$UWS_DIR/uSockets
        else
            no_sources "UWS_SRC is set but USOCKETS_SRC is not (and $UWS_DIR/uSockets is empty)"
        fi
        return 0
    fi
    if [ -f "$SRC/clone/uWebSockets/src/App.h" ] && [ -f "$SRC/clone/uWebSockets/uSockets/src/libusockets.h" ]; then
        UWS_DIR=$SRC/clone/uWebSockets; USOCKETS_DIR=$UWS_DIR/uSockets
    elif [ $CHECK = 1 ]; then
        timeout 20 git ls-remote https://github.com/uNetworking/uWebSockets HEAD >/dev/null 2>&1 ||
            no_sources "no UWS_SRC/USOCKETS_SRC given and github.com cannot be reached"
        return 0
    else
        echo "bench/peers/uws/build.sh: cloning uWebSockets and uSockets from github.com" >&2
        rm -rf "$SRC/clone"; mkdir -p "$SRC/clone"
        if ! timeout 60 git clone -q --depth 1 https://github.com/uNetworking/uWebSockets "$SRC/clone/uWebSockets" >&2 ||
           ! timeout 60 git -C "$SRC/clone/uWebSockets" submodule update -q --init --depth 1 uSockets >&2; then
            rm -rf "$SRC/clone"
            no_sources "no UWS_SRC/USOCKETS_SRC given and git clone from github.com failed"
        fi
        UWS_DIR=$SRC/clone/uWebSockets; USOCKETS_DIR=$UWS_DIR/uSockets
    fi
    DESC="uWebSockets $(git -C "$UWS_DIR" describe --tags --always) on uSockets $(git -C "$USOCKETS_DIR" describe --tags --always) (cloned)"
}

find_sources
[ $CHECK = 1 ] && exit 0

mkdir -p "$OUT"
CXXFLAGS=(-std=c++20 -O3 -flto -DNDEBUG -w)
CFLAGS=(-std=c11 -O3 -flto -DNDEBUG -w)
# build FLAVOUR BINARY DEFINE LIBS...: uSockets' C (and the SNI tree for
# OpenSSL) and the server, linked with LTO.
build() {
    local flavour=$1 bin=$2 define=$3; shift 3
    local obj=$OUT/obj-$flavour srcs=() f
    if [ -x "$bin" ] && [ "$(cat "$bin.inputs" 2>/dev/null)" = "$INPUTS" ] &&
       [ "$(cat "$bin.desc" 2>/dev/null)" = "$DESC" ]; then
        return 0
    fi
    rm -rf "$obj"; mkdir -p "$obj"
    for f in "$USOCKETS_DIR"/src/*.c "$USOCKETS_DIR"/src/eventing/*.c "$USOCKETS_DIR"/src/crypto/*.c; do
        gcc "${CFLAGS[@]}" "$define" -I"$USOCKETS_DIR/src" -c "$f" -o "$obj/$(basename "$f" .c).o"
    done
    if [ "$define" = -DLIBUS_USE_OPENSSL ]; then
        g++ "${CXXFLAGS[@]}" "$define" -I"$USOCKETS_DIR/src" -c "$USOCKETS_DIR/src/crypto/sni_tree.cpp" -o "$obj/sni_tree.o"
    fi
    srcs=("$obj"/*.o)
    g++ "${CXXFLAGS[@]}" "$define" -I"$UWS_DIR/src" -I"$USOCKETS_DIR/src" bench/peers/uws/server.cpp \
        "${srcs[@]}" "$@" -lz -o "$bin.part"
    mv "$bin.part" "$bin"
    echo "$DESC" > "$bin.desc"
    echo "$INPUTS" > "$bin.inputs"
    echo "bench/peers/uws/build.sh: built ${bin#"$ROOT"/} ($flavour; $DESC)" >&2
}
build plain "$OUT/uws-server" -DLIBUS_NO_SSL
build openssl "$OUT/uws-server-ssl" -DLIBUS_USE_OPENSSL -lssl -lcrypto
echo "$DESC, g++ $(g++ -dumpfullversion) -O3 -flto" > "$OUT/VERSION"
