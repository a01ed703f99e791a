#!/usr/bin/env bash
# Issue 14: the split-1 pool of nine 6-epoch udc models plus three 64 KiB searches fine-tuned 15 epochs with the
# search's augmentation; the cascade benchmark, then the gain census, alone, from the main checkout.
cd /work/main
export PYTHONPATH=/work/main
while [ "$(grep -c ' rc ' runs/aug15/run.log)" -lt 3 ]; do sleep 20; done  # the three fine-tunes are done
for s in 1 3 5; do rm -rf runs/seeds_split1/seed_$s/udc_64kb_aug15; cp -r runs/aug15/seed_${s}_64kb runs/seeds_split1/seed_$s/udc_64kb_aug15; done
log=/work/main/runs/aug15/chain_bench.log
step() { echo "== $(date -u +%FT%TZ) load $(cat /proc/loadavg) :: $*" >> $log; "$@" >> /work/main/runs/aug15/chain_bench.out 2>&1; echo "== $(date -u +%FT%TZ) rc $? load $(cat /proc/loadavg)" >> $log; }
POOL=$(for s in 1 3 5; do for k in 8kb 32kb 64kb 64kb_aug15; do printf "runs/seeds_split1/seed_$s/udc_$k/model.tflite,"; done; done | sed 's/,$//')
OUT=benchmarks/fashion_mnist/ensemble_finetune6/augmented_members
mkdir -p $OUT
step python tools/benchmark_ensemble.py --config.split_seed=1 --pool=$POOL --max_members=4 --accelerator=ethos-u55-128 \
  --max_cost_ratio=0.4 --cheaper_than_flash_peer --work_dir=runs/aug15/ensemble --output_dir=$OUT
step python tools/ensemble_gain_census.py --config.split_seed=1 --pool=$POOL --max_k=5 --output_dir=$OUT
echo "== $(date -u +%FT%TZ) chain done" >> $log
