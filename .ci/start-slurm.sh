#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine for the Parsl engine's Slurm tests.
#
# Installs Debian's slurmctld/slurmd/slurm-client/munge when missing, starts munged, slurmctld and
# slurmd directly (no systemd here), and waits until `sinfo` shows the node usable. Idempotent:
# running daemons are left alone. Everything listens on 127.0.0.1 only. Must run as root.
# The PIDs of the daemons it starts go to $SLURM_CI_DIR/started/ so .ci/stop-slurm.sh stops
# exactly those. Knobs: SLURM_CI_DIR (/var/tmp/slurm-ci), SLURM_PARTITION (debug), SLURM_WAIT_S (60).
set -euo pipefail

STATE=${SLURM_CI_DIR:-/var/tmp/slurm-ci}
PARTITION=${SLURM_PARTITION:-debug}
WAIT_S=${SLURM_WAIT_S:-60}
CONF=/etc/slurm/slurm.conf
HEADER="# quanta .ci/start-slurm.sh: one-node test cluster"
START=$SECONDS

say() { echo "[start-slurm +$((SECONDS - START))s] $*"; }
# running PIDFILE: the process exists and is not a zombie (PID 1 here may reap late)
running() {
    local pid
    [ -s "$1" ] || return 1
    pid=$(cat "$1")
    [ -r "/proc/$pid/stat" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != Z ]
}
wait_for() { local i; for i in $(seq 50); do running "$1" && return 0; sleep 0.1; done; return 1; }

[ "$(id -u)" -eq 0 ] || { echo "start-slurm.sh must run as root" >&2; exit 1; }

missing=0
for tool in slurmctld slurmd sbatch sinfo munged; do command -v "$tool" >/dev/null || missing=1; done
if [ "$missing" = 1 ]; then
    say "installing slurmctld slurmd slurm-client munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Not the slurm-wlm metapackage: it pulls in ~40 packages the tests never use.
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi
mkdir -p "$STATE/started" "$STATE/spool/ctld" "$STATE/spool/d" "$STATE/log" /run/slurm /etc/slurm

# munge: the key comes with the package; create it only when missing. munged runs as user munge.
if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    mungekey --create --keyfile=/etc/munge/munge.key --force
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
if ! running /run/munge/munged.pid; then
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged
    wait_for /run/munge/munged.pid || { echo "munged did not start" >&2; exit 1; }
    cp /run/munge/munged.pid "$STATE/started/munged.pid"
fi
munge -n | unmunge >/dev/null

# The node is this host if its name resolves to loopback, else "localhost", so nothing leaves 127.0.0.1.
NODE=$(hostname -s)
case "$(getent ahostsv4 "$NODE" | awk 'NR == 1 {print $1}')" in
    127.*) ;;
    *) NODE=localhost ;;
esac
CPUS=$(nproc)
# Advertise 90% of MemTotal (a node claiming more than slurmd sees is drained), and give jobs that
# ask no --mem a per-CPU share rather than the whole node.
MEM_MB=$(awk '/^MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
CONF_TEXT="$HEADER
ClusterName=quanta
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$((MEM_MB / CPUS))
ReturnToService=2
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmctldPort=6817
SlurmdPort=6818
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
MinJobAge=300
KillWait=5
InactiveLimit=0
Waittime=0
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
changed=0
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$CONF_TEXT" ]; then
    if [ -f "$CONF" ] && [ "$(head -n 1 "$CONF")" != "$HEADER" ]; then
        cp -p "$CONF" "$CONF.before-quanta"
    fi
    printf '%s\n' "$CONF_TEXT" > "$CONF"
    changed=1
    say "wrote $CONF (node $NODE, $CPUS CPUs, $MEM_MB MB, partition $PARTITION)"
fi

if running /run/slurm/slurmctld.pid; then
    [ "$changed" = 1 ] && scontrol reconfigure || true
else
    say "starting slurmctld"
    slurmctld -i
    wait_for /run/slurm/slurmctld.pid || { tail -n 30 "$STATE/log/slurmctld.log" >&2; exit 1; }
    cp /run/slurm/slurmctld.pid "$STATE/started/slurmctld.pid"
fi
if ! running /run/slurm/slurmd.pid; then
    say "starting slurmd"
    slurmd -N "$NODE"
    wait_for /run/slurm/slurmd.pid || { tail -n 30 "$STATE/log/slurmd.log" >&2; exit 1; }
    cp /run/slurm/slurmd.pid "$STATE/started/slurmd.pid"
fi

node_state=""
for _ in $(seq $((WAIT_S * 4))); do
    node_state=$(sinfo -h -n "$NODE" -o %t 2>/dev/null || true)
    case "$node_state" in
        idle | mix | alloc) break ;;
        drain* | down* | drng*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.25
done
case "$node_state" in
    idle | mix | alloc) say "Slurm is ready: node $NODE is $node_state" ;;
    *)
        echo "Slurm node $NODE is not usable (state '$node_state')" >&2
        tail -n 20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
        exit 1
        ;;
esac
