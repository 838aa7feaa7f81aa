#!/bin/bash
# Boot-time configuration of the Flower SuperNode appliance.
#
# Reads the build facts (/etc/fsn-appliance/image.env) and the user's context (context.sh of
# KEY='value' lines), checks that ML_FRAMEWORK names the framework this disk was built for and
# that the CPU has what that framework needs, then loads the staged docker-archive (once) and
# starts the SuperNode container. Every check runs before Docker is touched, so a fatal error
# starts nothing. Context variables (all read here, none sourced as code):
#   ML_FRAMEWORK                   required; must equal the framework of this appliance
#   SUPERLINK_ADDRESS              required; HOST:PORT of the SuperLink Fleet API
#   SUPERNODE_INSECURE             YES: --insecure (plain gRPC); default NO (TLS)
#   SUPERNODE_ROOT_CERTIFICATES    base64 PEM CA bundle for TLS; absent: the public CAs
#   SUPERNODE_NODE_CONFIG          --node-config, e.g. "partition-id=0 num-partitions=2"
#   SUPERNODE_CLIENTAPPIO_ADDRESS  --clientappio-api-address HOST:PORT
#   SUPERNODE_MAX_RETRIES          --max-retries N
#   SUPERNODE_MAX_WAIT_TIME        --max-wait-time SECONDS
set -eu
set -o pipefail

IMAGE_ENV=${FSN_IMAGE_ENV:-/etc/fsn-appliance/image.env}
CONTEXT_FILE=${FSN_CONTEXT_FILE:-/run/fsn-context/context.sh}
CPUINFO=${FSN_CPUINFO:-/proc/cpuinfo}
STATE_DIR=${FSN_STATE_DIR:-/var/lib/fsn-appliance}
CONTAINER=flower-supernode

say() { echo "fsn-appliance: $*"; }
fatal() {
    echo "fsn-appliance: FATAL: $1" >&2
    [ -z "${2:-}" ] || echo "fsn-appliance: hint: $2" >&2
    exit 1
}

# Read KEY='value' lines into CTX_KEY variables. OpenNebula writes a quote inside a value as
# '\''; any other line (comments, blanks, multi-line values) is skipped, never executed.
read_kv() {
    local file=$1 prefix=$2 line key value
    local re="^([A-Za-z_][A-Za-z0-9_]*)='(.*)'[[:space:]]*$"
    while IFS= read -r line || [ -n "$line" ]; do
        if [[ $line =~ $re ]]; then
            key=${BASH_REMATCH[1]}
            value=${BASH_REMATCH[2]//\'\\\'\'/\'}
            printf -v "${prefix}${key}" '%s' "$value"
        fi
    done < "$file"
}

ctx() { local name="CTX_$1"; printf '%s' "${!name:-}"; }

[ -r "$IMAGE_ENV" ] || fatal "$IMAGE_ENV is missing" "this disk was not built by fsnbuild"
read_kv "$IMAGE_ENV" ""
if [ -r "$CONTEXT_FILE" ]; then
    read_kv "$CONTEXT_FILE" CTX_
else
    fatal "no context found ($CONTEXT_FILE)" \
        "attach a context CD-ROM labelled CONTEXT whose context.sh sets ML_FRAMEWORK"
fi

say "appliance ${FSN_IMAGE_REF} built for ML_FRAMEWORK=${FSN_FRAMEWORK}"

framework=$(ctx ML_FRAMEWORK)
if [ -z "$framework" ]; then
    fatal "ML_FRAMEWORK is not set in the context; this appliance runs ${FSN_FRAMEWORK}" \
        "set ML_FRAMEWORK=${FSN_FRAMEWORK} in the VM template's context"
fi
if [ "$framework" != "$FSN_FRAMEWORK" ]; then
    fatal "ML_FRAMEWORK=${framework} but this appliance was built for ML_FRAMEWORK=${FSN_FRAMEWORK} (${FSN_IMAGE_REF}); no container started" \
        "boot the flower-supernode-${framework} appliance, or set ML_FRAMEWORK=${FSN_FRAMEWORK}"
fi

flags=" $(grep -m1 '^flags' "$CPUINFO" | cut -d: -f2) "
missing=""
for flag in $FSN_CPU_FLAGS; do
    case "$flags" in *" $flag "*) ;; *) missing="$missing $flag" ;; esac
done
if [ -n "$missing" ]; then
    fatal "this CPU lacks${missing}, which ${FSN_FRAMEWORK} needs (required:${FSN_CPU_FLAGS:+ }${FSN_CPU_FLAGS}); no container started" \
        "give the VM a CPU model with these flags (host-passthrough, or x86-64-v2/v3 models)"
fi

superlink=$(ctx SUPERLINK_ADDRESS)
if ! [[ $superlink =~ ^(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9._-]+):[0-9]{1,5}$ ]]; then
    fatal "SUPERLINK_ADDRESS='${superlink}' is not HOST:PORT" \
        "set SUPERLINK_ADDRESS to the SuperLink's Fleet API, e.g. superlink.example:9092"
fi
args=(--superlink "$superlink")
mounts=()
case "$(ctx SUPERNODE_INSECURE)" in
    YES | yes | true | 1) args+=(--insecure) ;;
    "" | NO | no | false | 0)
        certs=$(ctx SUPERNODE_ROOT_CERTIFICATES)
        if [ -n "$certs" ]; then
            install -d -m 0755 "$STATE_DIR/certs"
            printf '%s' "$certs" | base64 -d > "$STATE_DIR/certs/ca.crt" \
                || fatal "SUPERNODE_ROOT_CERTIFICATES is not base64" "base64-encode the PEM file"
            mounts+=(-v "$STATE_DIR/certs/ca.crt:/app/certs/ca.crt:ro")
            args+=(--root-certificates /app/certs/ca.crt)
        fi
        ;;
    *) fatal "SUPERNODE_INSECURE='$(ctx SUPERNODE_INSECURE)' is not YES or NO" "use YES or NO" ;;
esac
node_config=$(ctx SUPERNODE_NODE_CONFIG)
[ -z "$node_config" ] || args+=(--node-config "$node_config")
clientappio=$(ctx SUPERNODE_CLIENTAPPIO_ADDRESS)
[ -z "$clientappio" ] || args+=(--clientappio-api-address "$clientappio")
for pair in MAX_RETRIES:--max-retries MAX_WAIT_TIME:--max-wait-time; do
    value=$(ctx "SUPERNODE_${pair%%:*}")
    [ -z "$value" ] && continue
    [[ $value =~ ^[0-9]+$ ]] || fatal "SUPERNODE_${pair%%:*}='$value' is not a number" "give seconds"
    args+=("${pair#*:}" "$value")
done

for _ in $(seq 1 120); do
    docker info > /dev/null 2>&1 && break
    sleep 1
done
docker info > /dev/null 2>&1 || fatal "the Docker engine did not start" "see journalctl -u docker"

if ! docker image inspect "$FSN_IMAGE_REF" > /dev/null 2>&1; then
    [ -r "$FSN_IMAGE_ARCHIVE" ] || fatal "the engine lacks ${FSN_IMAGE_REF} and \
${FSN_IMAGE_ARCHIVE} is gone (removed after the first load)" "redeploy the appliance"
    say "loading ${FSN_IMAGE_REF} from ${FSN_IMAGE_ARCHIVE}"
    docker load -i "$FSN_IMAGE_ARCHIVE" > /dev/null \
        || fatal "docker load of ${FSN_IMAGE_ARCHIVE} failed" "see journalctl -u docker"
    docker image inspect "$FSN_IMAGE_REF" > /dev/null 2>&1 \
        || fatal "${FSN_IMAGE_ARCHIVE} does not contain ${FSN_IMAGE_REF}" "rebuild the disk"
    # Once loaded, the engine holds the image; keeping the archive would store it twice on a
    # disk sized for one copy. The shipped QCOW2 still carries it for every new VM.
    rm -f "$FSN_IMAGE_ARCHIVE"
fi
say "image loaded: ${FSN_IMAGE_REF} (${FSN_IMAGE_DIGEST})"

docker rm -f "$CONTAINER" > /dev/null 2>&1 || true
# Host networking: the SuperNode only dials out, and the engine may run without a bridge.
if ! id=$(docker run -d --name "$CONTAINER" --restart unless-stopped --network host \
    "${mounts[@]}" "$FSN_IMAGE_REF" "${args[@]}"); then
    fatal "the Docker engine could not start ${FSN_IMAGE_REF}" "see journalctl -u fsn-supernode"
fi
say "supernode container started: ${id:0:12} ${FSN_IMAGE_REF} ${args[*]}"
