#!/usr/bin/env bash
# Pool 6 (issue 14): two more supernets on split 2 (fmnist_cnn seed 10, resnet8 seed 11), 32 and 64 KiB, fine-tuned
# 6 epochs as pools 4 and 5; one after the other, alone, from a worktree of 9309321; then the ensemble benchmark over
# pools 4, 5 and 6 (14 models), with at most 4 and at most 6 members.
cd /work/bench
export PYTHONPATH=/work/bench
log=/work/main/runs/chain_pool6.log
step() { echo "== $(date -u +%FT%TZ) load $(cat /proc/loadavg) :: $*" >> $log; "$@" >> /work/main/runs/chain_pool6.out 2>&1; echo "== $(date -u +%FT%TZ) rc $? load $(cat /proc/loadavg)" >> $log; }
P=/work/main/runs/pool6
step udc-benchmark --config=configs/fashion_mnist.py --config.seed=10 --config.split_seed=2 --config.search.finetune_epochs=6 \
  --budgets_kb=32,64 --recipes=ptq_int8 --random_controls=0 --nouniform_controls --workdir=$P/fmnist_cnn_seed10 \
  --output_dir=$P/fmnist_cnn_seed10_front
step udc-benchmark --config=configs/fashion_mnist_resnet8.py --config.seed=11 --config.split_seed=2 --config.search.finetune_epochs=6 \
  --budgets_kb=32,64 --recipes=ptq_int8 --random_controls=0 --nouniform_controls --workdir=$P/resnet8_seed11 \
  --output_dir=$P/resnet8_seed11_front
pool=$(ls /work/main/runs/pool4/*/udc_*kb/model.tflite /work/main/runs/pool5/*/udc_*kb/model.tflite $P/*/udc_*kb/model.tflite | paste -sd,)
step python tools/benchmark_ensemble.py --config.split_seed=2 --pool=$pool --max_members=4 --accelerator=ethos-u55-128 \
  --max_cost_ratio=0.4 --cheaper_than_flash_peer --work_dir=/work/main/runs/ens_pool456 --output_dir=/work/main/runs/ens_pool456/out
step python tools/benchmark_ensemble.py --config.split_seed=2 --pool=$pool --max_members=6 --accelerator=ethos-u55-128 \
  --max_cost_ratio=0.4 --cheaper_than_flash_peer --work_dir=/work/main/runs/ens_pool456_6 --output_dir=/work/main/runs/ens_pool456_6/out
echo "== $(date -u +%FT%TZ) chain done" >> $log
