#!/usr/bin/env bash
# Issue 14: the split-1 supernet-seeds pool with a third supernet (seed 5); the seed 1 and 3 supernets and
# searches reused; at most 4 members; alone, from a worktree of 8e2898a.
cd /work/bench
export PYTHONPATH=/work/bench
log=/work/main/runs/chain_seeds_split1_s135.log
step() { echo "== $(date -u +%FT%TZ) load $(cat /proc/loadavg) :: $*" >> $log; "$@" >> /work/main/runs/chain_seeds_split1_s135.out 2>&1; echo "== $(date -u +%FT%TZ) rc $? load $(cat /proc/loadavg)" >> $log; }
step udc-ensemble --config=configs/fashion_mnist.py --config.split_seed=1 --config.search.finetune_epochs=6 \
  --budgets_kb=8,32,64 --supernet_seeds=1,3,5 --workdir=/work/main/runs/seeds_split1 --max_members 4 --max_cost_ratio 0.4 \
  --cheaper_than_flash_peer --latency_repeats 200 --output_dir=/work/main/runs/seeds_split1_s135
echo "== $(date -u +%FT%TZ) chain done" >> $log
