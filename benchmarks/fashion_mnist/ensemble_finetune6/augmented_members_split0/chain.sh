#!/usr/bin/env bash
# Issue 14: split 0, the two-supernet pool of ensemble_finetune6/supernet_seeds_split0 with its 64 KiB searches also
# fine-tuned with augmentation (udc-ensemble --augmented_budgets_kb=64), then the gain census; alone, from a worktree
# of a68d9a8.
cd /work/bench
export PYTHONPATH=/work/bench
log=/work/main/runs/chain_aug_split0.log
step() { echo "== $(date -u +%FT%TZ) load $(cat /proc/loadavg) :: $*" >> $log; "$@" >> /work/main/runs/chain_aug_split0.out 2>&1; echo "== $(date -u +%FT%TZ) rc $? load $(cat /proc/loadavg)" >> $log; }
step udc-ensemble --config=configs/fashion_mnist.py --config.split_seed=0 --config.search.finetune_epochs=6 \
  --budgets_kb=8,32,64 --augmented_budgets_kb=64 --supernet_seeds=1,3 --workdir=/work/main/runs/seeds_split0 \
  --max_members 4 --max_cost_ratio 0.4 --cheaper_than_flash_peer --latency_repeats 200 \
  --output_dir=/work/main/runs/seeds_split0_aug
POOL=$(for s in 1 3; do for k in 8kb 32kb 64kb 64kb_augmented; do printf "/work/main/runs/seeds_split0/seed_$s/udc_$k/model.tflite,"; done; done | sed 's/,$//')
step python tools/ensemble_gain_census.py --config.split_seed=0 --pool=$POOL --max_k=5 --output_dir=/work/main/runs/seeds_split0_aug
echo "== $(date -u +%FT%TZ) chain done" >> $log
