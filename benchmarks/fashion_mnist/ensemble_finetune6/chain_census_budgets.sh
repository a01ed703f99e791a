#!/usr/bin/env bash
# Issue 14: both gain censuses rerun with the pairs-by-budget table (tools/ensemble_gain_census.py of ca48379), alone, from the main checkout.
cd /work/main
log=/work/main/runs/chain_census_budgets.log
step() { echo "== $(date -u +%FT%TZ) load $(cat /proc/loadavg) :: $*" >> $log; "$@" >> /work/main/runs/chain_census_budgets.out 2>&1; echo "== $(date -u +%FT%TZ) rc $? load $(cat /proc/loadavg)" >> $log; }
P1=$(python -c "import json;print(json.load(open('benchmarks/fashion_mnist/ensemble_finetune6/supernet_seeds_split1_s135/gain_census.json'))['command'].split('--pool=')[1].split()[0])")
P2=$(python -c "import json;print(json.load(open('benchmarks/fashion_mnist/ensemble_finetune6/gain_census.json'))['command'].split('--pool=')[1].split()[0])")
step python tools/ensemble_gain_census.py --config.split_seed=1 --pool=$P1 --max_k=9 --output_dir=benchmarks/fashion_mnist/ensemble_finetune6/supernet_seeds_split1_s135
step python tools/ensemble_gain_census.py --config.split_seed=2 --pool=$P2 --max_k=8 --output_dir=benchmarks/fashion_mnist/ensemble_finetune6
echo "== $(date -u +%FT%TZ) chain done" >> $log
