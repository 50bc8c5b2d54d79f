#!/usr/bin/env bash
# Evaluation summary of the rule-based baselines on highway, 100 episodes each (seeds 0..99).
# The baselines read the simulator state, not the observation, so the cheaper kinematics preset is used.
set -euo pipefail
runs=${1:-runs}
for policy in idm random; do
  drive evaluate --policy "$policy" --env highway --obs kinematics --episodes 100 --seed 0 --runs-dir "$runs" --quiet
done
