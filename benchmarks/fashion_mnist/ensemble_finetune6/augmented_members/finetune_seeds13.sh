#!/usr/bin/env bash
# 15-epoch fine-tunes with the search's augmentation (shifts, flips) of the split-1 64 KiB searches of supernets 1 and 3.
cd /work/main
export PYTHONPATH=/work/main
log=/work/main/runs/aug15/run.log
for s in 1 3; do
  echo "== $(date -u +%FT%TZ) load $(cat /proc/loadavg) :: seed $s" >> $log
  udc-search --config=configs/fashion_mnist.py --config.seed=$s --config.split_seed=1 --config.budget_kb=64 \
    --config.search.finetune_epochs=15 --config.search.finetune_augment=True \
    --config.search.supernet=/work/main/runs/seeds_split1/seed_$s/supernet \
    --config.search.float_model=/work/main/runs/seeds_split1/seed_$s/float/model.keras \
    --workdir=/work/main/runs/aug15/seed_${s}_64kb >> /work/main/runs/aug15/run$s.out 2>&1
  echo "== $(date -u +%FT%TZ) rc $? load $(cat /proc/loadavg)" >> $log
done
