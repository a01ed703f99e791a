#!/usr/bin/env bash
# Issue 14: the split-1 64 KiB search of supernet 5 (a copy of its workdir without the fine-tune and export) fine-tuned 15 epochs with the search's augmentation; alone.
cd /work/main
export PYTHONPATH=/work/main
log=/work/main/runs/aug15/run.log
echo "== $(date -u +%FT%TZ) load $(cat /proc/loadavg)" >> $log
udc-search --config=configs/fashion_mnist.py --config.seed=5 --config.split_seed=1 --config.budget_kb=64 \
  --config.search.finetune_epochs=15 --config.search.finetune_augment=True \
  --config.search.supernet=/work/main/runs/seeds_split1/seed_5/supernet \
  --config.search.float_model=/work/main/runs/seeds_split1/seed_5/float/model.keras \
  --workdir=/work/main/runs/aug15/seed_5_64kb >> /work/main/runs/aug15/run.out 2>&1
echo "== $(date -u +%FT%TZ) rc $? load $(cat /proc/loadavg)" >> $log
