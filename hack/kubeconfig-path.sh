#!/usr/bin/env bash
# Print the admin kubeconfig of the local cluster.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
echo "${KUBECONFIG_PATH}"
