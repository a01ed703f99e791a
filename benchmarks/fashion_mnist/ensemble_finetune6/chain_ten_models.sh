#!/usr/bin/env bash
# Pool 5 (issue 14): two more supernets on split 2 (fmnist_cnn seed 8, resnet8 seed 9), 32 and 64 KiB, fine-tuned
# 6 epochs as pool 4; one after the other, alone, from a worktree of 2be570a; then the ensemble benchmark over
# pool 4 and pool 5 (10 models).
cd /work/bench
export PYTHONPATH=/work/bench
log=/work/main/runs/chain_pool5.log
step() { echo "== $(date -u +%FT%TZ) load $(cat /proc/loadavg) :: $*" >> $log; "$@" >> /work/main/runs/chain_pool5.out 2>&1; echo "== $(date -u +%FT%TZ) rc $? load $(cat /proc/loadavg)" >> $log; }
P=/work/main/runs/pool5
step udc-benchmark --config=configs/fashion_mnist.py --config.seed=8 --config.split_seed=2 --config.search.finetune_epochs=6 \
  --budgets_kb=32,64 --recipes=ptq_int8 --random_controls=0 --nouniform_controls --workdir=$P/fmnist_cnn_seed8 \
  --output_dir=$P/fmnist_cnn_seed8_front
step udc-benchmark --config=configs/fashion_mnist_resnet8.py --config.seed=9 --config.split_seed=2 --config.search.finetune_epochs=6 \
  --budgets_kb=32,64 --recipes=ptq_int8 --random_controls=0 --nouniform_controls --workdir=$P/resnet8_seed9 \
  --output_dir=$P/resnet8_seed9_front
pool=$(ls /work/main/runs/pool4/*/udc_*kb/model.tflite $P/*/udc_*kb/model.tflite | paste -sd,)
step python tools/benchmark_ensemble.py --config.split_seed=2 --pool=$pool --max_members=4 --accelerator=ethos-u55-128 \
  --max_cost_ratio=0.4 --cheaper_than_flash_peer --work_dir=/work/main/runs/ens_pool45 --output_dir=/work/main/runs/ens_pool45/out
echo "== $(date -u +%FT%TZ) chain done" >> $log
