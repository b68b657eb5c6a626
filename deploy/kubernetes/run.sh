#!/bin/bash
# Run the three Jobs of sharded.yaml in order. Usage: deploy/kubernetes/run.sh [NAMESPACE]
set -euo pipefail
ns=(--namespace "${1:-default}")
here=$(cd "$(dirname "$0")" && pwd)
job() { # apply one document of sharded.yaml by its Job name, then wait for it
	kubectl "${ns[@]}" delete job "$1" --ignore-not-found
	kubectl "${ns[@]}" apply -f <(awk -v n="$1" 'BEGIN{RS="---\n"} $0 ~ "name: " n "\n" {print}' "$here/sharded.yaml")
	kubectl "${ns[@]}" wait --for=condition=complete --timeout=24h "job/$1"
}
job kneepipe-plan
job kneepipe-shards
job kneepipe-merge
