"""The MLTS domain: topology, workload and matching, side chains (and, next, the main chain,
collaborative blocks and anchoring), settlement rounds. No ``ray``, no wall clock."""
