#!/usr/bin/env bash
# Starts a one-node Slurm cluster on this machine (munge + slurmctld + slurmd, private
# config, state and ports under WORK), submits samples/slurm/t2v_array.sbatch as a 4-task
# array over LIST, waits for it, and stops the daemons. Exit 77 with the reason on stdout
# when Slurm cannot run here (not installed, not root, daemons refuse to start).
#
#   slurm_cluster.sh WORK SBATCH_SCRIPT T2V LIST OUT "T2V_ARGS"
set -uo pipefail
WORK=$1 SCRIPT=$2 T2V=$3 LIST=$4 OUT=$5 ARGS=$6
TASKS=4

skip() { echo "SKIP: $*"; exit 77; }
for p in slurmctld slurmd sbatch scontrol munged munge; do
  command -v "$p" >/dev/null 2>&1 || [ -x "/usr/sbin/$p" ] ||
    skip "$p is not installed (Debian: apt-get install slurm-wlm munge; ./setup.sh --test-tools does it)"
done
[ "$(id -u)" -eq 0 ] || skip "starting slurmd needs root"
PATH=/usr/sbin:$PATH

mkdir -p "$WORK"/{state,spool,log}
cleanup() {
  for f in "$WORK"/slurmd.pid "$WORK"/slurmctld.pid; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
  done
  sleep 0.5
}
trap cleanup EXIT

# munge: reuse a running munged (the system one), else start it the way its service does.
if ! munge -n >/dev/null 2>&1; then
  [ -f /etc/munge/munge.key ] || { mungekey --create >/dev/null 2>&1 || create-munge-key >/dev/null 2>&1; } ||
    skip "no munge key and none could be created"
  mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null
  su -s /bin/sh munge -c munged 2>"$WORK/log/munged.err" || munged --force 2>>"$WORK/log/munged.err" ||
    skip "munged does not start: $(tail -1 "$WORK/log/munged.err")"
  for _ in $(seq 50); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n >/dev/null 2>&1 || skip "munged started but does not answer"
fi

HOST=$(hostname -s)
CPUS=$(nproc)
# Private ports, so a cluster already on this machine is left alone.
PORT=$((20000 + ($$ % 20000)))
cat >"$WORK/slurm.conf" <<EOF
ClusterName=t2vtest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=t2v Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$WORK/slurm.conf

slurmctld -i -f "$SLURM_CONF" 2>"$WORK/log/slurmctld.err" ||
  skip "slurmctld does not start: $(tail -1 "$WORK/log/slurmctld.err") $(tail -1 "$WORK/log/slurmctld.log" 2>/dev/null)"
slurmd -f "$SLURM_CONF" 2>"$WORK/log/slurmd.err" ||
  skip "slurmd does not start: $(tail -1 "$WORK/log/slurmd.err") $(tail -1 "$WORK/log/slurmd.log" 2>/dev/null)"
up=0
for _ in $(seq 100); do
  if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then up=1; break; fi
  sleep 0.2
done
[ "$up" = 1 ] || skip "the node did not come up: $(sinfo -h -o '%t %E' 2>&1) $(tail -2 "$WORK/log/slurmd.log" 2>/dev/null)"

# The array as a user submits it; --gres=none: this cluster has no GPUs (t2v runs on the CPU),
# one CPU per task so the tasks run side by side.
cd "$WORK" || exit 1
timeout 600 sbatch --wait --array=0-$((TASKS - 1)) --gres=none --cpus-per-task=1 --time=00:20:00 \
  --export="ALL,LIST=$LIST,OUT=$OUT,T2V=$T2V,T2V_ARGS=$ARGS,OMP_NUM_THREADS=1" \
  --output="$WORK/log/task-%a.log" "$SCRIPT"
rc=$?
for f in "$WORK"/log/task-*.log; do echo "== $f"; cat "$f"; done
echo "sbatch --wait exit $rc"
exit $rc
