#!/usr/bin/env bash
# Installs what udc needs on a fresh Debian machine with Python 3.11: the Python
# packages (this project, editable, with its test extras) and, when run as root, the
# Debian packages with the full Fashion-MNIST dataset (the default task's data) and
# espeak-ng (which speaks the synthetic keyword-spotting set).
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "install.sh: Fashion-MNIST is not installed; run 'sudo apt-get install dataset-fashion-mnist'" \
         "or point \$UDC_DATA_DIR at its IDX files" >&2
  fi
fi
if ! command -v espeak-ng >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null
  else
    echo "install.sh: espeak-ng is not installed (it speaks the synthetic keyword set);" \
         "run 'sudo apt-get install espeak-ng'" >&2
  fi
fi
python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -e ".[test]"
