"""The MLTS domain: topology, workload, traders and matching, side chains and the main chain,
collaborative blocks and anchoring, the round and its settlement. No ``ray``, no wall clock."""
