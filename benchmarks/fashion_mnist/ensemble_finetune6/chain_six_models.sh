#!/usr/bin/env bash
# Pool 4 (issue 14): pool 3's searches (split 2) re-fine-tuned 6 epochs instead of 2, members and singles alike,
# one after the other, alone, from a worktree of HEAD; then the ensemble benchmark over the six models.
cd /work/bench
export PYTHONPATH=/work/bench
log=/work/main/runs/chain_pool4.log
step() { echo "== $(date -u +%FT%TZ) load $(cat /proc/loadavg) :: $*" >> $log; "$@" >> /work/main/runs/chain_pool4.out 2>&1; echo "== $(date -u +%FT%TZ) rc $? load $(cat /proc/loadavg)" >> $log; }
P=/work/main/runs/pool4
step udc-benchmark --config=configs/fashion_mnist.py --config.seed=6 --config.split_seed=2 --config.search.finetune_epochs=6 \
  --budgets_kb=8,32,64 --recipes=ptq_int8 --random_controls=0 --nouniform_controls --workdir=$P/fmnist_cnn_seed6 \
  --output_dir=$P/fmnist_cnn_seed6_front
step udc-benchmark --config=configs/fashion_mnist_resnet8.py --config.seed=7 --config.split_seed=2 --config.search.finetune_epochs=6 \
  --budgets_kb=8,32,64 --recipes=ptq_int8 --random_controls=0 --nouniform_controls --workdir=$P/resnet8_seed7 \
  --output_dir=$P/resnet8_seed7_front
pool=$(ls $P/*/udc_*kb/model.tflite | paste -sd,)
step python tools/benchmark_ensemble.py --config.split_seed=2 --pool=$pool --max_members=4 --accelerator=ethos-u55-128 \
  --max_cost_ratio=0.4 --cheaper_than_flash_peer --work_dir=/work/main/runs/ens_pool4 --output_dir=/work/main/runs/ens_pool4/out
echo "== $(date -u +%FT%TZ) chain done" >> $log
