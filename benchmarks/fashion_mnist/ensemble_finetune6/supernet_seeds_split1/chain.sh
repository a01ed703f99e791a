#!/usr/bin/env bash
# Issue 14: udc-ensemble --supernet_seeds at full scale on split 1 (fmnist_cnn, two supernets, 32 and 64 KiB,
# 6-epoch fine-tune), alone, from a worktree of 253383c.
cd /work/bench
export PYTHONPATH=/work/bench
log=/work/main/runs/chain_seeds_split1.log
step() { echo "== $(date -u +%FT%TZ) load $(cat /proc/loadavg) :: $*" >> $log; "$@" >> /work/main/runs/chain_seeds_split1.out 2>&1; echo "== $(date -u +%FT%TZ) rc $? load $(cat /proc/loadavg)" >> $log; }
step udc-ensemble --config=configs/fashion_mnist.py --config.split_seed=1 --config.search.finetune_epochs=6 \
  --budgets_kb=32,64 --supernet_seeds=1,3 --workdir=/work/main/runs/seeds_split1 --max_cost_ratio 0.4 \
  --cheaper_than_flash_peer --latency_repeats 200
echo "== $(date -u +%FT%TZ) chain done" >> $log
