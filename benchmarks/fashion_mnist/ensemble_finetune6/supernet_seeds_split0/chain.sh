#!/usr/bin/env bash
# Issue 14: split 0 with 6-epoch members of two supernets (seeds 1 and 3) at 8, 32 and 64 KiB, at most 4 members;
# alone, from a worktree of 2c7518e.
cd /work/bench
export PYTHONPATH=/work/bench
log=/work/main/runs/chain_seeds_split0.log
step() { echo "== $(date -u +%FT%TZ) load $(cat /proc/loadavg) :: $*" >> $log; "$@" >> /work/main/runs/chain_seeds_split0.out 2>&1; echo "== $(date -u +%FT%TZ) rc $? load $(cat /proc/loadavg)" >> $log; }
step udc-ensemble --config=configs/fashion_mnist.py --config.split_seed=0 --config.search.finetune_epochs=6 \
  --budgets_kb=8,32,64 --supernet_seeds=1,3 --workdir=/work/main/runs/seeds_split0 --max_members 4 --max_cost_ratio 0.4 \
  --cheaper_than_flash_peer --latency_repeats 200 --output_dir=/work/main/runs/seeds_split0
echo "== $(date -u +%FT%TZ) chain done" >> $log
