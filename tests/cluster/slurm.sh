#!/usr/bin/env bash
# A real Slurm on this machine: a one-node cluster (localhost, 2 CPUs) whose munged, slurmctld and
# slurmd this script starts in a temporary folder and stops again by their process ids, whatever
# happens. It checks that `lnlab sweep --slurm` (a 4-point sweep of tiny runs as a 2-task job
# array) ends with the same `lnlab summarize` as the same sweep run locally, then again with one
# task requeued mid-run (`scontrol requeue`): the requeued task resumes its points from their
# checkpoints. Installs nothing: where slurm-wlm or munge is missing it says so and exits 0
# without claiming a pass. Needs root (the daemons run as root). The CLI is built here, once,
# before any job runs; the jobs run the built lnlab.dll and never build.
# Environment: LNLAB_SLURM_KEEP=1 keeps the temporary folder; LNLAB_SLURM_TIMEOUT (s, default 300)
# bounds each wait for a sweep.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
say() { echo "slurm.sh: $*"; }

missing=()
for tool in munged slurmctld slurmd sbatch squeue scontrol; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "SKIPPED, not run: ${missing[*]} not installed (apt-get install slurm-wlm munge); no pass is claimed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  say "SKIPPED, not run: the test cluster's daemons run as root and this is uid $(id -u); no pass is claimed"
  exit 0
fi
export PATH="$PATH:/usr/sbin"
timeout_s="${LNLAB_SLURM_TIMEOUT:-300}"

tmp="$(mktemp -d /tmp/lnlab-slurm.XXXXXX)"
chmod 700 "$tmp"
daemon_pids=()
dump_logs() {
  local f n
  for f in "$tmp"/munged.log "$tmp"/slurmctld.log "$tmp"/slurmd.log "$tmp"/sweep-*/logs/slurm-*.out "$tmp"/sweep-*/logs/p*.log; do
    [ -f "$f" ] || continue
    case "$f" in *.out) n=40 ;; *p[0-9]*.log) n=4 ;; *) n=30 ;; esac
    echo "----- ${f#"$tmp"/} (last $n lines) -----"
    tail -n "$n" "$f"
  done
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Jobs first (so slurmd ends their processes), then the daemons, newest first, by pid.
  if [ -n "${SLURM_CONF:-}" ] && [ ${#daemon_pids[@]} -ge 3 ] && [ -n "$(timeout 10 squeue -h -o %i 2>/dev/null)" ]; then
    timeout 10 scancel -u root >/dev/null 2>&1 || true
    for _ in $(seq 1 60); do [ -z "$(timeout 10 squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.5; done
  fi
  for ((i = ${#daemon_pids[@]} - 1; i >= 0; i--)); do
    pid="${daemon_pids[i]}"
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  # Whatever a cancelled job left behind: processes running on this test's folder (ours alone), by pid.
  for pid in $(pgrep -f -- "$tmp/" 2>/dev/null); do
    [ "$pid" != "$$" ] && kill -KILL "$pid" 2>/dev/null || true
  done
  if [ "${LNLAB_SLURM_KEEP:-}" = 1 ] || [ "$rc" -ne 0 ]; then
    say "state kept in $tmp"
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM
fail() {
  say "FAIL: $*"
  dump_logs
  exit 1
}

# A free TCP port (bash's /dev/tcp: a refused connection means nobody listens there).
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  fail "no free TCP port found"
}

# --- The CLI, built once here (never inside a job) ---
dll="$root/src/LabelNoiseLab.Cli/bin/Release/net10.0/lnlab.dll"
say "building the CLI (Release)"
dotnet build "$root/src/LabelNoiseLab.Cli" -c Release -nologo -v q -clp:ErrorsOnly >"$tmp/build.log" 2>&1 \
  || { cat "$tmp/build.log"; fail "dotnet build failed"; }
lnlab() { dotnet "$dll" "$@"; }

# --- munged with its own key and socket ---
dd if=/dev/urandom of="$tmp/munge.key" bs=1024 count=1 status=none
chmod 400 "$tmp/munge.key"
munged --foreground --force --key-file="$tmp/munge.key" --socket="$tmp/munge.socket" \
  --pid-file="$tmp/munged.pid" --log-file="$tmp/munged.log" --seed-file="$tmp/munge.seed" >>"$tmp/munged.out" 2>&1 &
daemon_pids+=($!)
for _ in $(seq 1 50); do [ -S "$tmp/munge.socket" ] && break; sleep 0.2; done
[ -S "$tmp/munge.socket" ] || fail "munged did not create its socket within 10 s"

# --- slurm.conf: one node, localhost, 2 CPUs ---
host="$(hostname -s)"
mkdir -p "$tmp/state" "$tmp/spool"
cat >"$tmp/slurm.conf" <<CONF
ClusterName=lnlabci
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
AuthInfo=socket=$tmp/munge.socket
CredType=cred/munge
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
KillWait=30
MinJobAge=600
NodeName=localhost NodeHostname=$host NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=ci Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$tmp/slurm.conf"

slurmctld -D -i -f "$SLURM_CONF" >>"$tmp/slurmctld.log" 2>&1 &
daemon_pids+=($!)
slurmd -D -N localhost -f "$SLURM_CONF" >>"$tmp/slurmd.log" 2>&1 &
daemon_pids+=($!)
up=""
for _ in $(seq 1 60); do
  state="$(timeout 5 sinfo -h -n localhost -o %t 2>/dev/null || true)"
  case "$state" in idle*|mix*|alloc*) up=1; break ;; esac
  sleep 0.5
done
[ -n "$up" ] || fail "the node did not come up within 30 s (sinfo says '${state:-nothing}')"
say "cluster up: slurmctld pid ${daemon_pids[1]}, slurmd pid ${daemon_pids[2]}, node localhost $(sinfo -h -o '%c CPUs, %t')"

# --- A 4-point sweep of small runs (about 8 s each on an idle 2-core machine, 125,000 steps), with
# checkpoints inside epochs. The requeue in part 2 must land while both of a task's points train:
# at 1,000 samples and 40 epochs a run took about 0.6 s and sometimes finished first. ---
mkdir -p "$tmp/sweep"
cat >"$tmp/sweep/base.yaml" <<'YAML'
name: tiny
seed: 1
epochs: 200
batch_size: 16
checkpoint_every_steps: 400
data: {name: gaussian-mixture, samples: 10000, test_samples: 200}
noise: {kind: symmetric, seed: 2}
model: {kind: mlp, hidden: [32]}
optim: {kind: sgd, lr: 0.05}
YAML
cat >"$tmp/sweep/sweep.yaml" <<'YAML'
name: tiny
base: base.yaml
grid:
  noise.rate: [0.1, 0.3]
seeds: [1, 2]
YAML
points=("noise.rate=0.1/seed-1" "noise.rate=0.1/seed-2" "noise.rate=0.3/seed-1" "noise.rate=0.3/seed-2")

# metrics.csv without the wall-clock columns (seconds, eval_seconds), for comparing runs.
strip_clock() {
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i != "seconds" && $i != "eval_seconds") keep[i] = 1 }
           { out = ""; for (i = 1; i <= NF; i++) if (i in keep) out = out (out == "" ? "" : ",") $i; print out }' "$1"
}
same_as_local() { # DIR: summary.csv and every point's metrics equal the local sweep's
  local dir="$1" p
  lnlab summarize "$dir" >/dev/null || fail "lnlab summarize $dir failed"
  cmp -s "$tmp/local/summary.csv" "$dir/summary.csv" \
    || { diff "$tmp/local/summary.csv" "$dir/summary.csv"; fail "$dir/summary.csv differs from the local sweep's"; }
  for p in "${points[@]}"; do
    [ "$(cat "$dir/$p/status")" = complete ] || fail "$dir/$p: status $(cat "$dir/$p/status" 2>/dev/null)"
    cmp -s <(strip_clock "$tmp/local/$p/metrics.csv") <(strip_clock "$dir/$p/metrics.csv") \
      || fail "$dir/$p/metrics.csv differs from the local run's (wall-clock columns aside)"
    cmp -s "$tmp/local/$p/checkpoints/final.safetensors" "$dir/$p/checkpoints/final.safetensors" \
      || fail "$dir/$p/checkpoints/final.safetensors differs from the local run's"
  done
}
job_left() { # JOBID: whether any task of the array is still queued or running
  [ -n "$(timeout 10 squeue -h -j "$1" -o %i 2>/dev/null)" ]
}
wait_job() { # JOBID DIR
  local job="$1" dir="$2" start=$SECONDS
  while job_left "$job"; do
    [ $((SECONDS - start)) -lt "$timeout_s" ] || { lnlab sweep status "$dir"; squeue; fail "job $job still queued or running after $timeout_s s"; }
    sleep 1
  done
  say "job $job done after $((SECONDS - start)) s"
}
submit() { # DIR: prints the job id
  local out
  out="$(lnlab sweep "$tmp/sweep/sweep.yaml" --slurm --tasks 2 --jobs 2 --out "$1" 2>&1)" || fail "lnlab sweep --slurm failed: $out"
  echo "$out" >&2
  echo "$out" | sed -n 's/^submitted Slurm job \([0-9][0-9]*\):.*/\1/p'
}

say "the sweep run locally (reference)"
lnlab sweep "$tmp/sweep/sweep.yaml" --jobs 2 --out "$tmp/local" >"$tmp/local.log" 2>&1 || { cat "$tmp/local.log"; fail "the local sweep failed"; }
lnlab summarize "$tmp/local" >/dev/null || fail "lnlab summarize of the local sweep failed"

say "1. the sweep as a 2-task job array"
job="$(submit "$tmp/sweep-a")"
[ -n "$job" ] || fail "no job id in lnlab sweep --slurm's output"
wait_job "$job" "$tmp/sweep-a"
lnlab sweep status "$tmp/sweep-a" | tee "$tmp/status-a.txt"
tail -n 1 "$tmp/status-a.txt" | grep -q "^4 points: 4 complete," || fail "sweep status does not say 4 complete"
same_as_local "$tmp/sweep-a"
say "1. passed: summary.csv, metrics and final weights equal the local sweep's"

say "2. the sweep again, array task 0 requeued while its points train"
job="$(submit "$tmp/sweep-b")"
[ -n "$job" ] || fail "no job id in lnlab sweep --slurm's output"
# Wait until both points of task 0 (points 0 and 2) have written an in-epoch checkpoint and are not complete.
start=$SECONDS
while :; do
  ready=1
  for p in "${points[0]}" "${points[2]}"; do
    compgen -G "$tmp/sweep-b/$p/checkpoints/epoch-*-step-*.safetensors" >/dev/null || ready=""
  done
  [ -n "$ready" ] && break
  [ $((SECONDS - start)) -lt "$timeout_s" ] || { lnlab sweep status "$tmp/sweep-b"; fail "task 0's points wrote no checkpoint within $timeout_s s"; }
  sleep 0.5
done
for p in "${points[0]}" "${points[2]}"; do
  [ "$(cat "$tmp/sweep-b/$p/status")" = running ] || fail "$p ended before the requeue (status $(cat "$tmp/sweep-b/$p/status")); the runs are too short for this test"
done
scontrol requeue "${job}_0" || fail "scontrol requeue ${job}_0 failed"
say "requeued ${job}_0"
# Slurm holds a requeued task back (its begin time moves about two minutes ahead); let it start now.
for _ in $(seq 1 20); do
  [ "$(timeout 10 squeue -h -j "${job}_0" -o %t 2>/dev/null)" = PD ] && break
  sleep 0.5
done
timeout 10 scontrol update JobId="${job}_0" StartTime=now >/dev/null 2>&1 || say "note: scontrol update StartTime=now failed; waiting for Slurm's own begin time"
wait_job "$job" "$tmp/sweep-b"
lnlab sweep status "$tmp/sweep-b" | tee "$tmp/status-b.txt"
tail -n 1 "$tmp/status-b.txt" | grep -q "^4 points: 4 complete," || fail "sweep status does not say 4 complete"
log0="$(ls "$tmp/sweep-b/logs/slurm-${job}_0.out" 2>/dev/null)"
[ -n "$log0" ] || fail "no log of task 0 (logs/slurm-${job}_0.out)"
grep -q "restart 1" "$log0" || { cat "$log0"; fail "task 0 was not started again after the requeue"; }
grep -q "interrupted" "$log0" || { cat "$log0"; fail "task 0's points did not end interrupted on the requeue"; }
grep -Eq "noise.rate=0.(1|3)/seed-1: complete" "$log0" || { cat "$log0"; fail "the requeued task did not finish its points"; }
for n in 0 2; do # task 0's points went on from their checkpoints (the one SIGTERM wrote), not from the start
  head -n 1 "$tmp/sweep-b/logs/p000$n.log" | grep -q "^resuming .* from .*/checkpoints/epoch-[0-9]*" \
    || { head -n 3 "$tmp/sweep-b/logs/p000$n.log"; fail "point $n was not resumed from a checkpoint after the requeue"; }
done
same_as_local "$tmp/sweep-b"
say "2. passed: after the requeue, summary.csv, metrics and final weights equal the local sweep's"
say "PASSED"
